using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Diagnostics;

/// <summary>
/// How fast this machine multiplies matrices in a dtype, in GFLOP/s (2n³ operations per n×n product): the peak a model's
/// linear layers can reach. It decides <see cref="ComputeDtype.Auto"/> and is the denominator of a training step's
/// share of the peak (<see cref="Utilization"/>).
/// </summary>
public static class MatmulThroughput
{
    /// <summary>Square products of this side: the order of our models' linear layers (DiT-S/2 at batch 8 multiplies
    /// 2064×384 by 384×1536), big enough for the kernels' steady speed, small enough to take a few milliseconds.</summary>
    public const int DefaultSize = 1024;

    /// <summary>
    /// GFLOP/s of the fastest of <paramref name="repeats"/> timed products of two random <paramref name="size"/>²
    /// matrices in <paramref name="dtype"/>, after one untimed product (which also loads the kernels). The fastest, not the
    /// median: another process taking the cores for a moment slows single runs but never speeds one up.
    /// </summary>
    public static double Measure(ScalarType dtype, Device? device = null, int size = DefaultSize, int repeats = 5)
    {
        if (size < 1 || repeats < 1) throw new ArgumentOutOfRangeException(size < 1 ? nameof(size) : nameof(repeats));
        device ??= torch.CPU;
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        using var generator = new Generator(0);
        var a = torch.randn([size, size], generator: generator).to(dtype).to(device);
        var b = torch.randn([size, size], generator: generator).to(dtype).to(device);
        double best = double.MaxValue;
        for (int i = 0; i <= repeats; i++)
        {
            var clock = Stopwatch.StartNew();
            using (var c = a.mm(b))
                if (device.type == DeviceType.CUDA) torch.cuda.synchronize(device);
            if (i > 0) best = Math.Min(best, clock.Elapsed.TotalSeconds);
        }
        return 2.0 * size * size * size / Math.Max(best, 1e-9) / 1e9;
    }
}
