using TorchSharp;
using TorchSharp.Modules;
using LatentDiffusion.Diffusion;
using LatentDiffusion.Transformers;
using static TorchSharp.torch;

namespace LatentDiffusion.Text;

/// <summary>
/// Embeds caption tokens for the denoiser: a token-embedding table plus a learned position embedding per token
/// position, then (config <c>text.encoder_layers</c> &gt; 0) that many pre-norm self-attention layers over the caption
/// alone and a final LayerNorm. Without layers the denoiser's own blocks must fuse the words (in the in-context model
/// they share one sequence with the image); with them each word arrives already tied to its phrase, which is what a
/// caption naming two objects needs. The empty caption (no real token) becomes one learned <c>null_embedding</c>
/// token at position 0, made visible in the mask, so attention always has a condition token and "unconditional" is a
/// learned input, as the null class of class-conditional DiT.
/// Parameters: <c>token_embedding.weight</c> (V, D), <c>position_embedding</c> (1, L, D), <c>null_embedding</c> (D),
/// and with layers <c>layers.i.{norm1,attn,norm2,mlp}</c> and <c>norm</c>.
/// </summary>
internal sealed class TextEncoder : nn.Module
{
    private readonly Embedding token_embedding;
    private readonly Parameter position_embedding;
    private readonly Parameter null_embedding;
    /// <summary>The caption's own self-attention layers (the in-context block: pre-norm attention and MLP); null without.</summary>
    private readonly ModuleList<InContextBlock>? layers;
    private readonly LayerNorm? norm;

    // After module.to(dtype) the fields may hold the old tensors; read the registered ones (as DiT's pos_embed).
    Tensor PositionEmbedding => get_parameter("position_embedding")!;
    Tensor NullEmbedding => get_parameter("null_embedding")!;

    public int VocabSize { get; }
    public int MaxTokens { get; }

    public TextEncoder(TextConditionConfig config, int hiddenSize) : base(nameof(TextEncoder))
    {
        VocabSize = config.VocabSize;
        MaxTokens = config.MaxTokens;
        token_embedding = nn.Embedding(VocabSize, hiddenSize);
        position_embedding = new Parameter(torch.zeros(1, MaxTokens, hiddenSize));
        null_embedding = new Parameter(torch.zeros(hiddenSize));
        if (config.EncoderLayers > 0)
        {
            int heads = TextConditionConfig.EncoderHeads(hiddenSize);
            layers = nn.ModuleList(Enumerable.Range(0, config.EncoderLayers)
                .Select(_ => new InContextBlock(hiddenSize, heads, MlpRatio * hiddenSize)).ToArray());
            norm = nn.LayerNorm(hiddenSize, eps: 1e-6);
        }
        RegisterComponents();
    }

    /// <summary>
    /// Adds this encoder's parameters and forward FLOPs per caption at <paramref name="width"/> to a backbone's cost:
    /// the tables cost no FLOPs; each layer runs on all max_tokens positions.
    /// </summary>
    internal static void Count(CostTally tally, TextConditionConfig text, int width)
    {
        long d = width, l = text.MaxTokens;
        tally.Weights(text.VocabSize * d + l * d + d);                              // token table, positions, null token
        for (int i = 0; i < text.EncoderLayers; i++)
        {
            tally.Weights(2 * 2 * d);                                               // norm1, norm2 (affine)
            tally.Linear(l, d, 3 * d);                                              // attn.qkv
            tally.Attention(l, l, d);
            tally.Linear(l, d, d);                                                  // attn.proj
            tally.Linear(l, d, MlpRatio * d);                                       // mlp.fc1
            tally.Linear(l, MlpRatio * d, d);                                       // mlp.fc2
        }
        if (text.EncoderLayers > 0) tally.Weights(2 * d);                           // norm (affine)
    }

    /// <summary>Width of the encoder layers' MLP per channel (as ViT and BERT).</summary>
    public const int MlpRatio = 4;

    /// <summary>
    /// N(0, 0.02) for the three tables (as DiT's label table); in the layers Xavier-uniform Linears with zero bias and
    /// zero residual outputs, so each layer starts as the identity; LayerNorms 1 and 0. All drawn from <paramref name="generator"/>.
    /// </summary>
    public void InitializeWeights(Generator generator)
    {
        using var noGrad = torch.no_grad();
        foreach (var p in new[] { token_embedding.weight!, PositionEmbedding, NullEmbedding }) DiffusionTransformer.Normal(p, 0.02, generator);
        if (layers is null) return;
        foreach (var module in layers.modules())
        {
            if (module is Linear linear)
            {
                DiffusionTransformer.XavierUniform(linear.weight!, generator);
                linear.bias?.zero_();
            }
            else if (module is LayerNorm layerNorm)
            {
                layerNorm.weight?.fill_(1);
                layerNorm.bias?.zero_();
            }
        }
        foreach (var output in layers.SelectMany(l => l.ResidualOutputs)) DiffusionTransformer.ZeroLinear(output);
        norm!.weight!.fill_(1);
        norm.bias!.zero_();
    }

    /// <summary>
    /// (N, L) int64 ids and (N, L) bool mask (true = real token; null = all real) → tokens (N, L, D) in the weights'
    /// dtype and the mask the model must use (rows without a real token get the null token at position 0).
    /// </summary>
    public (Tensor tokens, Tensor mask) Encode(Tensor ids, Tensor? mask)
    {
        long n = ids.shape[0], l = ids.shape[1];
        using var scope = torch.NewDisposeScope();
        var m = mask?.to(ScalarType.Bool) ?? torch.ones(n, l, ScalarType.Bool, device: ids.device);
        var tokens = token_embedding.forward(ids) + PositionEmbedding.narrow(1, 0, l);
        var empty = m.any(1).logical_not();                                     // (N)
        var first = torch.where(empty.unsqueeze(1), NullEmbedding.unsqueeze(0).to(tokens.dtype), tokens.select(1, 0));
        tokens = torch.cat([first.unsqueeze(1), tokens.narrow(1, 1, l - 1)], 1);
        var firstMask = m.select(1, 0).logical_or(empty).unsqueeze(1);
        m = torch.cat([firstMask, m.narrow(1, 1, l - 1)], 1);
        if (layers is not null)
        {
            foreach (var layer in layers) tokens = layer.forward(tokens, m);
            tokens = norm!.forward(tokens);
        }
        return (tokens.MoveToOuterDisposeScope(), m.MoveToOuterDisposeScope());
    }
}
