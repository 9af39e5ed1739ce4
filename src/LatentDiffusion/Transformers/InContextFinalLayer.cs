using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LatentDiffusion.Transformers;

/// <summary>
/// Output layer of the in-context and cross-attention models: LayerNorm (<c>norm_final</c>, with affine parameters)
/// then <c>linear</c> to patch²·out_channels values per patch token; no conditioning of its own.
/// </summary>
internal sealed class InContextFinalLayer : nn.Module<Tensor, Tensor>
{
    private readonly LayerNorm norm_final;
    private readonly Linear linear;

    public InContextFinalLayer(int hiddenSize, int patchSize, int outChannels) : base(nameof(InContextFinalLayer))
    {
        norm_final = nn.LayerNorm(hiddenSize, eps: 1e-6);
        linear = nn.Linear(hiddenSize, patchSize * patchSize * outChannels);
        RegisterComponents();
    }

    public Linear Linear => linear;

    public override Tensor forward(Tensor x)
    {
        using var normed = norm_final.forward(x);
        return linear.forward(normed);
    }
}
