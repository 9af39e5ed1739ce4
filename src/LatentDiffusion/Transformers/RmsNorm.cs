using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LatentDiffusion.Transformers;

/// <summary>
/// RMSNorm over the last dimension with a learned scale (<c>weight</c>, ones at init): x / sqrt(mean(x²) + eps) · weight.
/// Used as QK-norm on each head's queries and keys (SD3.5, FLUX), which keeps attention logits bounded as training
/// and widths grow. Computed in float32 for bfloat16 inputs, so the norm does not lose the small values.
/// </summary>
internal sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly double eps;

    public RmsNorm(int dim, double eps = 1e-6) : base(nameof(RmsNorm))
    {
        this.eps = eps;
        weight = new Parameter(torch.ones(dim));
        RegisterComponents();
    }

    /// <summary>The learned scale (reset to ones by the model's initialisation).</summary>
    public Parameter Weight => weight;

    public override Tensor forward(Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        var f = x.to(ScalarType.Float32);
        var normed = f * torch.rsqrt(f.pow(2).mean([-1L], keepdim: true) + eps);
        return (normed.to(x.dtype) * weight).MoveToOuterDisposeScope();
    }
}
