using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests;

/// <summary>
/// Until disposed, libtorch fills every new CPU allocation with a NaN pattern (its own debugging switch
/// <c>caffe2_cpu_allocator_do_junk_fill</c> in c10, set through the exported flag). A kernel that reads memory it did
/// not write then gives NaN every time, where in ordinary runs it reads zeroed pages in a fresh process and NaN only
/// after the process has freed NaN tensors (a long test run, a training). Filling and freeing NaN tensors before a
/// computation reproduces that only now and then; this reproduces it deterministically.
/// The switch is process-wide: tests that use it are in the <see cref="JunkFilledAllocationsCollection"/>, which runs alone.
/// </summary>
public sealed class JunkFilledAllocations : IDisposable
{
    const string FlagName = "FLAGS_caffe2_cpu_allocator_do_junk_fill";
    readonly IntPtr _flag;
    readonly byte _previous;

    /// <summary>Switches the fill on; throws when this libtorch does not honour it.</summary>
    public JunkFilledAllocations()
    {
        using (torch.zeros(1)) { }   // libtorch is loaded before its c10 library is looked up
        _flag = FindFlag();
        _previous = Marshal.ReadByte(_flag);
        Marshal.WriteByte(_flag, 1);
        // Guard against a switch that silently does nothing (a libtorch that reads it once, or another c10 copy):
        // a test that relies on poisoned memory must not pass because the memory was clean.
        using var probe = torch.empty(256);
        if (!probe.isnan().all().item<bool>())
        {
            Marshal.WriteByte(_flag, _previous);
            throw new InvalidOperationException($"setting {FlagName} did not make new CPU tensors NaN-filled; this libtorch ignores the switch.");
        }
    }

    /// <summary>Restores the switch as it was.</summary>
    public void Dispose() => Marshal.WriteByte(_flag, _previous);

    /// <summary>The flag in the c10 library TorchSharp has loaded (found by its file name, so the loaded copy is reused).</summary>
    static IntPtr FindFlag()
    {
        string native = Path.Combine(AppContext.BaseDirectory, "runtimes", RuntimeInformation.RuntimeIdentifier, "native");
        string[] candidates = OperatingSystem.IsWindows() ? ["c10.dll", Path.Combine(native, "c10.dll")]
            : OperatingSystem.IsMacOS() ? ["libc10.dylib", Path.Combine(native, "libc10.dylib")]
            : ["libc10.so", Path.Combine(native, "libc10.so")];
        foreach (var name in candidates)
            if (NativeLibrary.TryLoad(name, out var lib) && NativeLibrary.TryGetExport(lib, FlagName, out var flag))
                return flag;
        throw new InvalidOperationException($"could not find {FlagName} in libtorch's c10 library (tried {string.Join(", ", candidates)}).");
    }
}

/// <summary>Tests that switch on <see cref="JunkFilledAllocations"/>; run after, not beside, the other tests.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class JunkFilledAllocationsCollection
{
    public const string Name = "junk-filled allocations";
}
