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

    [DllImport("libc", EntryPoint = "setenv")]
    static extern int SetEnv(string name, string value, int overwrite);

    static bool _configured;

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
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // Not glibc-like: leave the defaults.
        }
        Applied = string.Join(", ", applied);
    }
}
