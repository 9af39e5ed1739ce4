using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LatentDiffusion.UNets;

/// <summary>
/// Halves the resolution: a 3×3 stride-2 convolution <c>op</c> (the official <c>conv_resample=True</c>), or, inside a
/// down-sampling ResBlock, a parameter-free 2×2 average pool.
/// </summary>
internal sealed class Downsample : nn.Module<Tensor, Tensor>
{
    readonly Conv2d? op;

    public Downsample(int channels, bool useConv) : base(nameof(Downsample))
    {
        if (useConv) op = nn.Conv2d(channels, channels, kernel_size: 3, stride: 2, padding: 1);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) =>
        op is null ? nn.functional.avg_pool2d(x, kernel_size: 2, stride: 2) : op.forward(x);
}

/// <summary>
/// Doubles the resolution: nearest-neighbour interpolation, then a 3×3 convolution <c>conv</c> (omitted inside an
/// up-sampling ResBlock).
/// </summary>
internal sealed class Upsample : nn.Module<Tensor, Tensor>
{
    readonly Conv2d? conv;

    public Upsample(int channels, bool useConv) : base(nameof(Upsample))
    {
        if (useConv) conv = nn.Conv2d(channels, channels, kernel_size: 3, padding: 1);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var up = nn.functional.interpolate(x, scale_factor: [2.0, 2.0], mode: InterpolationMode.Nearest);
        return (conv is null ? up : conv.forward(up)).MoveToOuterDisposeScope();
    }
}
