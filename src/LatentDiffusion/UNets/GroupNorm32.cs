using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LatentDiffusion.UNets;

/// <summary>
/// GroupNorm with 32 groups and affine <c>weight</c>/<c>bias</c>. The UNet's own norms (<c>normalization()</c> of the
/// official util.py) run in float32 whatever the weights' dtype and cast back, eps 1e-5; the SpatialTransformer's
/// <c>Normalize</c> is a plain GroupNorm with eps 1e-6. Our own module because TorchSharp's <c>nn.GroupNorm</c> leaves
/// its affine parameters uninitialised; here they start at weight 1, bias 0.
/// </summary>
internal sealed class GroupNorm32 : nn.Module<Tensor, Tensor>
{
    readonly Parameter weight, bias;
    readonly double eps;
    readonly bool inFloat32;

    public GroupNorm32(int channels, double eps = 1e-5, bool inFloat32 = true) : base(nameof(GroupNorm32))
    {
        this.eps = eps;
        this.inFloat32 = inFloat32;
        weight = new Parameter(torch.ones(channels).DetachFromDisposeScope());
        bias = new Parameter(torch.zeros(channels).DetachFromDisposeScope());
        RegisterComponents();
    }

    // After module.to(dtype) the fields may hold the old tensors; read the registered ones.
    Tensor Weight => get_parameter("weight")!;
    Tensor Bias => get_parameter("bias")!;

    public override Tensor forward(Tensor x)
    {
        if (!inFloat32 || (x.dtype == ScalarType.Float32 && Weight.dtype == ScalarType.Float32))
            return nn.functional.group_norm(x, 32, Weight, Bias, eps);
        using var scope = NewDisposeScope();
        var y = nn.functional.group_norm(x.to(ScalarType.Float32), 32, Weight.to(ScalarType.Float32), Bias.to(ScalarType.Float32), eps);
        return y.to(x.dtype).MoveToOuterDisposeScope();
    }
}
