using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LatentDiffusion.Transformers;

/// <summary>
/// DiT's output layer: adaLN-modulated LayerNorm (<c>norm_final</c>, <c>adaLN_modulation</c>) then <c>linear</c> to
/// patch²·out_channels values per token. Keys as the official FinalLayer.
/// </summary>
internal sealed class FinalLayer : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly LayerNorm norm_final;
    private readonly Linear linear;
    private readonly Sequential adaLN_modulation;

    public FinalLayer(int hiddenSize, int patchSize, int outChannels) : base(nameof(FinalLayer))
    {
        norm_final = nn.LayerNorm(hiddenSize, eps: 1e-6, elementwise_affine: false);
        linear = nn.Linear(hiddenSize, patchSize * patchSize * outChannels);
        adaLN_modulation = nn.Sequential(("0", nn.SiLU()), ("1", nn.Linear(hiddenSize, 2 * hiddenSize)));
        RegisterComponents();
    }

    public Linear Linear => linear;
    public Linear ModulationLinear => (Linear)adaLN_modulation[1];

    public override Tensor forward(Tensor x, Tensor c)
    {
        using var scope = torch.NewDisposeScope();
        var m = adaLN_modulation.forward(c).chunk(2, 1);
        return linear.forward(Modulation.Modulate(norm_final.forward(x), m[0], m[1])).MoveToOuterDisposeScope();
    }
}
