using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace LatentDiffusion.IO;

/// <summary>Raw access to a CPU tensor's elements, for code that hands them to native or vectorised routines.</summary>
internal static class TensorMemory
{
    /// <summary>The address of a contiguous CPU tensor's first element (TorchSharp's byte span over its storage, whose
    /// length is an int: give tensors of under 2 GiB, slicing larger ones).</summary>
    public static unsafe IntPtr Address(Tensor contiguous) => contiguous.NumberOfElements == 0 ? IntPtr.Zero
        : (IntPtr)Unsafe.AsPointer(ref MemoryMarshal.GetReference(contiguous.bytes));
}
