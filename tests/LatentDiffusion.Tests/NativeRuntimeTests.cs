using System.Runtime.InteropServices;
using LatentDiffusion.Diagnostics;
using Xunit;

namespace LatentDiffusion.Tests;

/// <summary>The MKL shim that gives AMD CPUs with AVX-512 MKL's AVX-512 kernels: built beside the tool, loadable,
/// answering as MKL's own function does on Intel, and only taken on the CPUs it is meant for.</summary>
public class NativeRuntimeTests
{
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    delegate int IntAnswer();

    static bool HaveCompiler() => new[] { "/usr/bin/cc", "/usr/local/bin/cc", "/bin/cc" }.Any(File.Exists);

    [Fact]
    public void TheShimIsBuiltBesideTheToolAndAnswersThatTheCpuIsIntels()
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64 || !HaveCompiler()) return;
        string tool = Path.Combine(RepoPaths.Root, "artifacts", "bin", "LatentDiffusion.Cli", "release", NativeRuntime.MklShimFile);
        Assert.True(File.Exists(tool), $"{tool} is missing: the build compiles src/LatentDiffusion/Native/mkl_avx512_on_amd.c when cc exists");
        var handle = NativeLibrary.Load(tool);
        try
        {
            var answer = Marshal.GetDelegateForFunctionPointer<IntAnswer>(NativeLibrary.GetExport(handle, "mkl_serv_intel_cpu_true"));
            Assert.Equal(1, answer());
        }
        finally { NativeLibrary.Free(handle); }
    }

    [Fact]
    public void OnlyAmdCpusWithAvx512TakeIt()
    {
        if (!File.Exists("/proc/cpuinfo")) return;
        string info = File.ReadAllText("/proc/cpuinfo");
        bool amd = info.Contains("AuthenticAMD", StringComparison.Ordinal);
        bool avx512 = new[] { "avx512f", "avx512bw", "avx512dq", "avx512vl" }.All(f => info.Contains(" " + f, StringComparison.Ordinal));
        Assert.Equal(amd && avx512, NativeRuntime.IsAmdWithAvx512());
    }
}
