using System.Globalization;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Diagnostics;

/// <summary>
/// What <see cref="ComputeDtype.Auto"/> resolved to on a machine, and why: the measured matrix-product speeds of both
/// precisions (also the peaks that <see cref="Utilization"/> divides by).
/// </summary>
/// <param name="Dtype">Float32 or BFloat16.</param>
/// <param name="Float32GFlops">Float32 product speed, GFLOP/s.</param>
/// <param name="Bf16GFlops">bf16 product speed, GFLOP/s.</param>
/// <param name="Machine">The CPU (or device) measured, e.g. "AMD EPYC (family 26, model 2), 2 threads".</param>
/// <param name="FromCache">True when the speeds were read from the cache file rather than measured now.</param>
public sealed record PrecisionChoice(ScalarType Dtype, double Float32GFlops, double Bf16GFlops, string Machine, bool FromCache)
{
    /// <summary>How many times faster bf16 products are than float32's.</summary>
    public double Bf16Speedup => Bf16GFlops / Float32GFlops;

    /// <summary>The measured product speed of <paramref name="dtype"/> (float32's for anything but bf16).</summary>
    public double PeakGFlops(ScalarType dtype) => dtype == ScalarType.BFloat16 ? Bf16GFlops : Float32GFlops;

    /// <summary>"bf16 (bf16 product 640 GFLOP/s vs float32 160 on AMD EPYC ..., 2 threads)".</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{(Dtype == ScalarType.BFloat16 ? "bf16" : "float32")} (bf16 product {Bf16GFlops:F0} GFLOP/s vs float32 {Float32GFlops:F0} on {Machine}{(FromCache ? "; cached" : "")})");
}

/// <summary>
/// Resolves <see cref="ComputeDtype.Auto"/>: measures float32 and bf16 matrix products on this machine
/// (<see cref="MatmulThroughput"/>, about 0.2 s in all), once per CPU model, torch thread count and libtorch version
/// (cached in <see cref="ThroughputCache.DefaultPath"/>, and in the process), and picks bf16 only when its products are
/// at least <see cref="Bf16Margin"/> times float32's. bf16 training is mixed precision (float32 master weights, optimizer
/// state and loss), whose weight and gradient copies cost time a plain float32 step does not pay; a bf16 product that
/// is barely faster does not win the step back.
/// </summary>
public static class ComputePrecision
{
    /// <summary>bf16 is chosen when its product speed is at least this multiple of float32's.</summary>
    public const double Bf16Margin = 1.2;

    static readonly Dictionary<string, PrecisionChoice> Resolved = new(StringComparer.Ordinal);
    static readonly object Gate = new();

    /// <summary>The dtype <see cref="ComputeDtype.Auto"/> means for the measured speeds (GFLOP/s).</summary>
    public static ScalarType Choose(double float32GFlops, double bf16GFlops) =>
        bf16GFlops >= Bf16Margin * float32GFlops ? ScalarType.BFloat16 : ScalarType.Float32;

    /// <summary>
    /// The faster of float32 and bf16 on <paramref name="device"/> (default: the CPU) at the current torch thread count:
    /// measured the first time, then read from the cache file (CPU) or the process (any device). Cheap after the first call.
    /// </summary>
    /// <param name="device">Where the model runs (default: the CPU).</param>
    /// <param name="remeasure">Measure now even when cached, and replace the cached speeds (<c>ldm bench</c> does: a cache
    /// written while other work shared the cores would otherwise keep its low figures).</param>
    public static PrecisionChoice Auto(Device? device = null, bool remeasure = false)
    {
        device ??= torch.CPU;
        bool cpu = device.type == DeviceType.CPU;
        string key = MachineKey(device);
        lock (Gate)
        {
            if (!remeasure && Resolved.TryGetValue(key, out var known)) return known;
            // GPUs are not cached on disk: their index says nothing about which GPU it is, and they measure in milliseconds.
            var choice = Resolve(cpu ? ThroughputCache.DefaultPath : null, key, Describe(device),
                dtype => MatmulThroughput.Measure(dtype, device), remeasure);
            Resolved[key] = choice;
            return choice;
        }
    }

    /// <summary>
    /// The choice for the machine <paramref name="key"/> names: the speeds cached under it in <paramref name="cacheFile"/>
    /// (null: no file), else <paramref name="measure"/> (GFLOP/s of a dtype) run for float32 and bf16 and written there.
    /// With <paramref name="remeasure"/> the cache is not read, only written.
    /// </summary>
    public static PrecisionChoice Resolve(string? cacheFile, string key, string machine, Func<ScalarType, double> measure, bool remeasure = false)
    {
        if (!remeasure && cacheFile is not null && ThroughputCache.TryRead(cacheFile, key) is var (f32Cached, bf16Cached))
            return new PrecisionChoice(Choose(f32Cached, bf16Cached), f32Cached, bf16Cached, machine, FromCache: true);
        double f32 = measure(ScalarType.Float32), bf16 = measure(ScalarType.BFloat16);
        if (cacheFile is not null) ThroughputCache.Write(cacheFile, key, f32, bf16);
        return new PrecisionChoice(Choose(f32, bf16), f32, bf16, machine, FromCache: false);
    }

    /// <summary>The cache key: the CPU model (or the device), torch's thread count, the libtorch version and the product size.</summary>
    public static string MachineKey(Device? device = null) => string.Create(CultureInfo.InvariantCulture,
        $"{Describe(device ?? torch.CPU)}; libtorch {torch.__version__}; {MatmulThroughput.DefaultSize}^2 products{(NativeRuntime.MklAvx512OnAmd ? "; MKL AVX-512 on AMD" : "")}");

    /// <summary>"AMD EPYC (family 26, model 2), 2 threads", or "cuda:0".</summary>
    static string Describe(Device device) => device.type == DeviceType.CPU
        ? $"{CpuModel()}, {torch.get_num_threads()} threads"
        : device.ToString();

    /// <summary>The CPU's model name with its family and model numbers, from /proc/cpuinfo (virtual machines often shorten
    /// the name, e.g. "AMD EPYC", and the numbers tell the generations apart); elsewhere the architecture and core count.</summary>
    public static string CpuModel()
    {
        try
        {
            if (File.Exists("/proc/cpuinfo"))
            {
                string? name = null, family = null, model = null;
                foreach (var line in File.ReadLines("/proc/cpuinfo"))
                {
                    if (line.Length == 0) break; // the first processor's block is enough
                    int colon = line.IndexOf(':');
                    if (colon < 0) continue;
                    string k = line[..colon].Trim(), v = line[(colon + 1)..].Trim();
                    if (k == "model name") name = v;
                    else if (k == "cpu family") family = v;
                    else if (k == "model") model = v;
                }
                if (name is not null)
                    return family is null ? name : $"{name} (family {family}, model {model})";
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        return $"{System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture} CPU, {Environment.ProcessorCount} cores";
    }
}
