using LatentDiffusion.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LatentDiffusion.Transformers;

/// <summary>
/// A plain pre-norm Transformer block (ViT): x + attn(norm1(x)), then + mlp(norm2(x)). The conditioning reaches it
/// only as tokens in the sequence (in-context conditioning). The optional key mask hides padded condition tokens.
/// </summary>
internal sealed class InContextBlock : nn.Module<Tensor, Tensor?, Tensor>
{
    private readonly LayerNorm norm1;
    private readonly Attention attn;
    private readonly LayerNorm norm2;
    private readonly Mlp mlp;

    public InContextBlock(int hiddenSize, int numHeads, int mlpHidden) : base(nameof(InContextBlock))
    {
        norm1 = nn.LayerNorm(hiddenSize, eps: 1e-6);
        attn = new Attention(hiddenSize, numHeads, qkvBias: true);
        norm2 = nn.LayerNorm(hiddenSize, eps: 1e-6);
        mlp = new Mlp(hiddenSize, mlpHidden);
        RegisterComponents();
    }

    /// <summary>The output layers of the two residual branches (zeroed at init so the block starts as the identity).</summary>
    public IEnumerable<Linear> ResidualOutputs => [attn.Proj, mlp.Fc2];

    /// <param name="x">(N, L, D) all tokens.</param>
    /// <param name="keyMask">(N, L) boolean, true = token may be attended to; null = all.</param>
    public override Tensor forward(Tensor x, Tensor? keyMask)
    {
        using var scope = torch.NewDisposeScope();
        var h = x + attn.forward(norm1.forward(x), keyMask);
        return (h + mlp.forward(norm2.forward(h))).MoveToOuterDisposeScope();
    }
}
