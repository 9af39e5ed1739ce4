using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LatentDiffusion.UNets;

/// <summary>
/// Halves the resolution, rounding up (n → ⌈n/2⌉, so 7 → 4 → 2): a 3×3 stride-2 convolution <c>op</c> with padding 1
/// (the official <c>conv_resample=True</c>, which rounds up by itself), or, inside a down-sampling ResBlock, a
/// parameter-free 2×2 average pool in ceil mode, so that both paths give the same size; an odd side's last, partial
/// window averages the pixels it covers. For even sides both are the official layers exactly.
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
        op is null ? nn.functional.avg_pool2d(x, kernel_size: 2, stride: 2, ceil_mode: true) : op.forward(x);
}

/// <summary>
/// Brings the resolution back up: nearest-neighbour interpolation, then a 3×3 convolution <c>conv</c> (omitted inside
/// an up-sampling ResBlock). The UNet gives the size to reach — that of the skip it is concatenated with next, which
/// is twice the input for even sizes and one less than that where the way down halved an odd side (4 → 7).
/// </summary>
internal sealed class Upsample : nn.Module<Tensor, Tensor>
{
    readonly Conv2d? conv;

    public Upsample(int channels, bool useConv) : base(nameof(Upsample))
    {
        if (useConv) conv = nn.Conv2d(channels, channels, kernel_size: 3, padding: 1);
        RegisterComponents();
    }

    /// <summary>Doubles the resolution (the official layer).</summary>
    public override Tensor forward(Tensor x) => forward(x, [2 * x.shape[2], 2 * x.shape[3]]);

    /// <summary>Interpolates to <paramref name="size"/> (H, W). At twice the input this picks the same pixels as a
    /// scale factor of 2 (source index ⌊i·n/2n⌋ = ⌊i/2⌋), so even sizes give the official numbers.</summary>
    public Tensor forward(Tensor x, long[] size)
    {
        using var scope = NewDisposeScope();
        var up = nn.functional.interpolate(x, size: size, mode: InterpolationMode.Nearest);
        return (conv is null ? up : conv.forward(up)).MoveToOuterDisposeScope();
    }
}
