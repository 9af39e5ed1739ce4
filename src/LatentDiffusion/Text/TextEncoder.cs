using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LatentDiffusion.Text;

/// <summary>
/// Embeds caption tokens for the diffusion Transformer: a token-embedding table plus a learned position embedding
/// per token position. Deliberately no text Transformer of its own: in the in-context model the DiT blocks fuse
/// text and image tokens in one self-attention sequence. The empty caption (no real token) becomes one learned
/// <c>null_embedding</c> token at position 0, made visible in the mask, so attention always has a condition token
/// and "unconditional" is a learned input, as the null class of class-conditional DiT.
/// Parameters: <c>token_embedding.weight</c> (V, D), <c>position_embedding</c> (1, L, D), <c>null_embedding</c> (D).
/// </summary>
internal sealed class TextEncoder : nn.Module
{
    private readonly Embedding token_embedding;
    private readonly Parameter position_embedding;
    private readonly Parameter null_embedding;

    // After module.to(dtype) the fields may hold the old tensors; read the registered ones (as DiT's pos_embed).
    Tensor PositionEmbedding => get_parameter("position_embedding")!;
    Tensor NullEmbedding => get_parameter("null_embedding")!;

    public int VocabSize { get; }
    public int MaxTokens { get; }

    public TextEncoder(int vocabSize, int maxTokens, int hiddenSize) : base(nameof(TextEncoder))
    {
        VocabSize = vocabSize;
        MaxTokens = maxTokens;
        token_embedding = nn.Embedding(vocabSize, hiddenSize);
        position_embedding = new Parameter(torch.zeros(1, maxTokens, hiddenSize));
        null_embedding = new Parameter(torch.zeros(hiddenSize));
        RegisterComponents();
    }

    /// <summary>N(0, 0.02) for the three tables (as DiT's label table), drawn from <paramref name="generator"/>.</summary>
    public void InitializeWeights(Generator generator)
    {
        using var noGrad = torch.no_grad();
        foreach (var p in new[] { token_embedding.weight!, PositionEmbedding, NullEmbedding })
        {
            using var values = torch.empty(p.shape, ScalarType.Float32, torch.CPU).normal_(0, 0.02, generator);   // CPU draw, copied to p's device
            p.copy_(values);
        }
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
        return (tokens.MoveToOuterDisposeScope(), m.MoveToOuterDisposeScope());
    }
}
