using LatentDiffusion.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LatentDiffusion.Transformers;

/// <summary>
/// The DiT block: adaptive LayerNorm (shift, scale) before attention and MLP, and a gate on each residual branch,
/// all regressed from the conditioning vector c = time + class embedding by <c>adaLN_modulation</c> (SiLU, Linear).
/// With the modulation zero-initialised every block starts as the identity ("adaLN-Zero"). Keys as the official DiTBlock.
/// </summary>
internal sealed class AdaLnZeroBlock : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly LayerNorm norm1;
    private readonly Attention attn;
    private readonly LayerNorm norm2;
    private readonly Mlp mlp;
    private readonly Sequential adaLN_modulation;

    public AdaLnZeroBlock(int hiddenSize, int numHeads, int mlpHidden) : base(nameof(AdaLnZeroBlock))
    {
        norm1 = nn.LayerNorm(hiddenSize, eps: 1e-6, elementwise_affine: false);
        attn = new Attention(hiddenSize, numHeads, qkvBias: true);
        norm2 = nn.LayerNorm(hiddenSize, eps: 1e-6, elementwise_affine: false);
        mlp = new Mlp(hiddenSize, mlpHidden);
        adaLN_modulation = nn.Sequential(("0", nn.SiLU()), ("1", nn.Linear(hiddenSize, 6 * hiddenSize)));
        RegisterComponents();
    }

    /// <summary>The Linear that regresses the six modulation vectors (zeroed at init).</summary>
    public Linear ModulationLinear => (Linear)adaLN_modulation[1];

    /// <param name="x">(N, T, D) tokens.</param>
    /// <param name="c">(N, D) conditioning vector.</param>
    public override Tensor forward(Tensor x, Tensor c)
    {
        using var scope = torch.NewDisposeScope();
        var m = adaLN_modulation.forward(c).chunk(6, 1);
        var (shiftMsa, scaleMsa, gateMsa, shiftMlp, scaleMlp, gateMlp) = (m[0], m[1], m[2], m[3], m[4], m[5]);
        var h = x + gateMsa.unsqueeze(1) * attn.forward(Modulation.Modulate(norm1.forward(x), shiftMsa, scaleMsa));
        var output = h + gateMlp.unsqueeze(1) * mlp.forward(Modulation.Modulate(norm2.forward(h), shiftMlp, scaleMlp));
        return output.MoveToOuterDisposeScope();
    }
}
