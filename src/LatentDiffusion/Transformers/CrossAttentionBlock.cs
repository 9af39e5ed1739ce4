using LatentDiffusion.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LatentDiffusion.Transformers;

/// <summary>
/// The DiT paper's cross-attention block: pre-norm self-attention over the patch tokens, then multi-head
/// cross-attention from the patch tokens to the conditioning sequence [time token, condition tokens], then the MLP.
/// </summary>
internal sealed class CrossAttentionBlock : nn.Module<Tensor, Tensor, Tensor?, Tensor>
{
    private readonly LayerNorm norm1;
    private readonly Attention attn;
    private readonly LayerNorm norm_cross;
    private readonly CrossAttention cross_attn;
    private readonly LayerNorm norm2;
    private readonly Mlp mlp;

    public CrossAttentionBlock(int hiddenSize, int numHeads, int mlpHidden) : base(nameof(CrossAttentionBlock))
    {
        norm1 = nn.LayerNorm(hiddenSize, eps: 1e-6);
        attn = new Attention(hiddenSize, numHeads, qkvBias: true);
        norm_cross = nn.LayerNorm(hiddenSize, eps: 1e-6);
        cross_attn = new CrossAttention(hiddenSize, hiddenSize, numHeads);
        norm2 = nn.LayerNorm(hiddenSize, eps: 1e-6);
        mlp = new Mlp(hiddenSize, mlpHidden);
        RegisterComponents();
    }

    /// <summary>The output layers of the three residual branches (zeroed at init so the block starts as the identity).</summary>
    public IEnumerable<Linear> ResidualOutputs => [attn.Proj, cross_attn.Proj, mlp.Fc2];

    /// <param name="x">(N, T, D) patch tokens.</param>
    /// <param name="context">(N, S, D) conditioning tokens.</param>
    /// <param name="contextMask">(N, S) boolean, true = attend; null = all.</param>
    public override Tensor forward(Tensor x, Tensor context, Tensor? contextMask)
    {
        using var scope = torch.NewDisposeScope();
        var h = x + attn.forward(norm1.forward(x), null);
        h = h + cross_attn.forward(norm_cross.forward(h), context, contextMask);
        return (h + mlp.forward(norm2.forward(h))).MoveToOuterDisposeScope();
    }
}
