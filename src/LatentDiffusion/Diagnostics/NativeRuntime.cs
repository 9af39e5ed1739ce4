using System.Runtime.InteropServices;

namespace LatentDiffusion.Diagnostics;

/// <summary>
/// Process-wide settings of the native runtime under libtorch (glibc's malloc, GNU OpenMP) that decide CPU training
/// speed on small shared machines. Call <see cref="ConfigureForCpuWork"/> once, before the first TorchSharp call.
/// </summary>
/// <remarks>
/// Measured on the 2-core project VM (domain classifier, Fashion-MNIST, batch 128, docs/evaluation.md):
/// glibc returns libtorch's large freed blocks to the kernel after every step, and touching fresh pages costs
/// 1.5–16 µs each here, so a 32 MB activation cost 130 ms to allocate instead of 1.5 ms; keeping freed memory in the
/// heap halves the CPU time of a step. GNU OpenMP's threads spin while they wait; when the cores are shared with
/// other processes the spinning threads steal each other's time slices (three times the CPU time per step);
/// passive waiting removes that at no measurable cost.
/// </remarks>
public static class NativeRuntime
{
    const int M_TRIM_THRESHOLD = -1;
    const int M_MMAP_MAX = -4;

    [DllImport("libc", EntryPoint = "mallopt")]
    static extern int Mallopt(int parameter, int value);

    const int RTLD_NOW = 2, RTLD_GLOBAL = 0x100;
    /// <summary>Built from Native/mkl_avx512_on_amd.c beside the assembly when a C compiler was there at build time.</summary>
    public const string MklShimFile = "libldm_mkl_avx512_on_amd.so";

    [DllImport("libc", EntryPoint = "dlopen")]
    static extern IntPtr DlOpen(string path, int flags);

    [DllImport("libc", EntryPoint = "setenv")]
    static extern int SetEnv(string name, string value, int overwrite);

    static bool _configured;

    /// <summary>True when <see cref="ConfigureForCpuWork"/> gave MKL its AVX-512 kernels on this AMD CPU (float32 products
    /// then run about twice as fast, so measured throughputs are kept apart from those without it).</summary>
    public static bool MklAvx512OnAmd { get; private set; }

    /// <summary>What <see cref="ConfigureForCpuWork"/> changed, for logs ("" when nothing).</summary>
    public static string Applied { get; private set; } = "";

    /// <summary>
    /// On Linux with glibc: keep freed memory in malloc's heap (no per-block mmap, no trimming) unless the user set
    /// malloc tunables, and make OpenMP threads wait passively unless OMP_WAIT_POLICY is set. Only effective before
    /// libtorch is loaded (OpenMP reads its environment once); calling it later or twice is harmless.
    /// </summary>
    public static void ConfigureForCpuWork()
    {
        if (_configured || !OperatingSystem.IsLinux()) return;
        _configured = true;
        // LDM_NATIVE_TUNING=off keeps libtorch's and glibc's defaults (for measuring what these settings do).
        if (string.Equals(Environment.GetEnvironmentVariable("LDM_NATIVE_TUNING"), "off", StringComparison.OrdinalIgnoreCase)) return;
        var applied = new List<string>();
        try
        {
            bool userMalloc = (Environment.GetEnvironmentVariable("GLIBC_TUNABLES") ?? "").Contains("malloc", StringComparison.Ordinal)
                || Environment.GetEnvironmentVariables().Keys.Cast<string>().Any(k => k.StartsWith("MALLOC_", StringComparison.Ordinal));
            // mallopt returns 1 on success; musl's stub returns 0 and changes nothing.
            if (!userMalloc && Mallopt(M_MMAP_MAX, 0) == 1 && Mallopt(M_TRIM_THRESHOLD, int.MaxValue) == 1)
                applied.Add("malloc keeps freed memory");
            if (Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") is null && SetEnv("OMP_WAIT_POLICY", "PASSIVE", 0) == 0)
            {
                Environment.SetEnvironmentVariable("OMP_WAIT_POLICY", "PASSIVE"); // .NET keeps its own copy of the environment
                applied.Add("OMP_WAIT_POLICY=PASSIVE");
            }
            MklAvx512OnAmd = LoadMklShim();
            if (MklAvx512OnAmd) applied.Add("MKL's AVX-512 kernels on this AMD CPU");
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // Not glibc-like: leave the defaults.
        }
        Applied = string.Join(", ", applied);
    }

    /// <summary>
    /// On an AMD CPU with AVX-512, loads <see cref="MklShimFile"/> into the global symbol scope, where it answers MKL's
    /// "is this an Intel CPU?" for MKL's own, so libtorch's float32 products take MKL's AVX-512 kernels instead of its
    /// AVX2 ones (2x the throughput on a 2-core Zen 5, docs/performance.md). Loaded before libtorch, a symbol of a
    /// global library is found before the library's own. LDM_MKL_AVX512_ON_AMD=off skips it.
    /// </summary>
    static bool LoadMklShim()
    {
        if (string.Equals(Environment.GetEnvironmentVariable("LDM_MKL_AVX512_ON_AMD"), "off", StringComparison.OrdinalIgnoreCase)) return false;
        if (RuntimeInformation.ProcessArchitecture != Architecture.X64 || !IsAmdWithAvx512()) return false;
        string path = Path.Combine(AppContext.BaseDirectory, MklShimFile);
        return File.Exists(path) && DlOpen(path, RTLD_NOW | RTLD_GLOBAL) != IntPtr.Zero;
    }

    /// <summary>True on an AMD CPU with the AVX-512 subsets MKL's SKX kernels use (F, BW, DQ, VL), from /proc/cpuinfo.</summary>
    internal static bool IsAmdWithAvx512()
    {
        try
        {
            string? vendor = null, flags = null;
            foreach (var line in File.ReadLines("/proc/cpuinfo"))
            {
                if (vendor is null && line.StartsWith("vendor_id", StringComparison.Ordinal)) vendor = line[(line.IndexOf(':') + 1)..].Trim();
                else if (flags is null && line.StartsWith("flags", StringComparison.Ordinal)) flags = line[(line.IndexOf(':') + 1)..];
                if (vendor is not null && flags is not null) break;
            }
            if (vendor != "AuthenticAMD" || flags is null) return false;
            var set = flags.Split(' ', StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal);
            return new[] { "avx512f", "avx512bw", "avx512dq", "avx512vl" }.All(set.Contains);
        }
        catch (IOException) { return false; }
        catch (UnauthorizedAccessException) { return false; }
    }
}
