using LatentDiffusion.IO;
using System.Runtime.InteropServices;
using TorchSharp;
using static MPI.Unsafe;
using static TorchSharp.torch;

namespace LatentDiffusion.Distributed;

/// <summary>
/// The ranks of an MPICH <c>mpiexec</c> launch (MPI_COMM_WORLD), through MPI.NET's raw bindings: collectives work
/// in place on the tensors' own memory (no copy through managed arrays), in pieces of at most 2^30 elements because
/// MPI counts are 32-bit. MPI is initialised with MPI_THREAD_SERIALIZED, so a collective may come from any thread as
/// long as only one runs at a time. Dispose finalises MPI; <see cref="Abort"/> ends every rank after an error, so
/// no rank waits forever in a collective the failed one will never join.
/// </summary>
public sealed unsafe class MpiProcessGroup : IProcessGroup
{
    const int ThreadSerialized = 2;                  // MPI_THREAD_SERIALIZED in MPICH's (and MS-MPI's) mpi.h
    static readonly IntPtr InPlace = new(-1);        // MPI_IN_PLACE
    const int MaxCount = 1 << 30;
    static MpiProcessGroup? s_world;
    bool _finalized;

    /// <inheritdoc/>
    public int Rank { get; }
    /// <inheritdoc/>
    public int Size { get; }

    MpiProcessGroup(int rank, int size) { Rank = rank; Size = size; }

    /// <summary>Initialises MPI (once per process) and returns the world group; throws <see cref="LdmException"/>
    /// when MPICH cannot be loaded or the launcher is Open MPI.</summary>
    public static MpiProcessGroup Initialize()
    {
        if (s_world is { } world) return world;
        MpiLaunch.CheckSupported();
        MpiLaunch.BindMpich();
        try
        {
            int argc = 0, provided = 0;
            byte** argv = null;
            Check(MPI_Init_thread(ref argc, ref argv, ThreadSerialized, out provided), "MPI_Init_thread");
            if (provided < ThreadSerialized)
                throw new LdmException($"the MPI library offers thread level {provided}, ldm needs MPI_THREAD_SERIALIZED; use MPICH's mpiexec.mpich.");
            int rank = 0, size = 0;
            Check(MPI_Comm_rank(MPI_COMM_WORLD, out rank), "MPI_Comm_rank");
            Check(MPI_Comm_size(MPI_COMM_WORLD, out size), "MPI_Comm_size");
            return s_world = new MpiProcessGroup(rank, size);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or BadImageFormatException)
        {
            throw new LdmException($"ldm was launched by mpiexec but could not use the MPI library ({e.Message.Split('\n')[0]}); install MPICH (apt-get install mpich) and launch with mpiexec.mpich (Open MPI's ABI differs).", e);
        }
    }

    static void Check(int code, string call)
    {
        // MPI_ERRORS_ARE_FATAL is MPICH's default, so a failed call normally ends the job before this runs.
        if (code != 0) throw new LdmException($"{call} failed with MPI error {code}; check the MPI launch (mpiexec.mpich -n N ldm ...).");
    }

    static int MpiType(ScalarType dtype) => dtype switch
    {
        ScalarType.Float32 => MPI_FLOAT,
        ScalarType.Float64 => MPI_DOUBLE,
        ScalarType.Int32 => MPI_INT,
        ScalarType.Int64 => MPI_LONG_LONG,
        _ => throw new LdmException($"a {dtype} tensor cannot be summed across ranks; convert it to float32, float64 or int64 first."),
    };

    static void CheckCpu(Tensor tensor)
    {
        if (tensor.device_type != DeviceType.CPU)
            throw new LdmException($"MPI collectives take CPU tensors, got one on {tensor.device}; move it with .cpu() first.");
    }

    /// <summary>Runs <paramref name="action"/> on a contiguous tensor with the values of <paramref name="tensor"/> and
    /// copies the result back when it had to be a copy.</summary>
    static void OnContiguous(Tensor tensor, Action<Tensor> action)
    {
        CheckCpu(tensor);
        if (tensor.is_contiguous()) { action(tensor); return; }
        using var copy = tensor.contiguous();
        action(copy);
        using (torch.no_grad()) tensor.copy_(copy);
    }

    /// <inheritdoc/>
    public void AllReduceSum(Tensor tensor)
    {
        int type = MpiType(tensor.dtype);
        OnContiguous(tensor, t =>
        {
            long n = t.NumberOfElements, size = t.ElementSize;
            var start = TensorMemory.Address(t);
            for (long done = 0; done < n; done += MaxCount)
                Check(MPI_Allreduce(InPlace, start + (nint)(done * size), (int)Math.Min(MaxCount, n - done), type, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
        });
    }

    /// <inheritdoc/>
    public void AllReduceMean(Tensor tensor)
    {
        if (tensor.dtype is not (ScalarType.Float32 or ScalarType.Float64))
            throw new LdmException($"the mean across ranks needs a float32 or float64 tensor, got {tensor.dtype}.");
        AllReduceSum(tensor);
        using (torch.no_grad()) tensor.div_(Size);
    }

    /// <inheritdoc/>
    public void Broadcast(Tensor tensor, int root = 0)
    {
        if (root < 0 || root >= Size) throw new LdmException($"rank {root} does not exist among {Size} ranks; broadcast from 0..{Size - 1}.");
        OnContiguous(tensor, t =>
        {
            long bytes = t.NumberOfElements * t.ElementSize;
            var start = TensorMemory.Address(t);
            for (long done = 0; done < bytes; done += MaxCount)
                Check(MPI_Bcast(start + (nint)done, (int)Math.Min(MaxCount, bytes - done), MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast");
        });
    }

    /// <inheritdoc/>
    public Tensor AllGather(Tensor tensor)
    {
        CheckCpu(tensor);
        using var local = tensor.contiguous();
        long rowBytes = local.shape.Skip(1).Aggregate(1L, (a, b) => a * b) * local.ElementSize;
        var rows = AllGatherLongs(local.shape[0]);
        var shape = local.shape.ToArray();
        shape[0] = rows.Sum();
        if (shape[0] * rowBytes > int.MaxValue)
            throw new LdmException($"gathering {shape[0]} rows of {rowBytes} bytes exceeds MPI's 2 GB message; gather in smaller parts.");
        var counts = rows.Select(r => (int)(r * rowBytes)).ToArray();
        var offsets = Offsets(counts);
        var result = torch.empty(shape, dtype: local.dtype, device: torch.CPU);
        Check(MPI_Allgatherv(TensorMemory.Address(local), counts[Rank], MPI_BYTE, TensorMemory.Address(result), counts, offsets, MPI_BYTE, MPI_COMM_WORLD), "MPI_Allgatherv");
        return result;
    }

    /// <inheritdoc/>
    public byte[][] AllGather(byte[] data)
    {
        var counts = AllGatherLongs(data.Length).Select(c => (int)c).ToArray();
        var offsets = Offsets(counts);
        var all = new byte[checked(counts.Sum())];
        fixed (byte* send = data)
        fixed (byte* receive = all)
            Check(MPI_Allgatherv((IntPtr)send, data.Length, MPI_BYTE, (IntPtr)receive, counts, offsets, MPI_BYTE, MPI_COMM_WORLD), "MPI_Allgatherv");
        return counts.Select((c, r) => all.AsSpan(offsets[r], c).ToArray()).ToArray();
    }

    long[] AllGatherLongs(long value)
    {
        var all = new long[Size];
        fixed (long* receive = all)
            Check(MPI_Allgather((IntPtr)(&value), 1, MPI_LONG_LONG, (IntPtr)receive, 1, MPI_LONG_LONG, MPI_COMM_WORLD), "MPI_Allgather");
        return all;
    }

    static int[] Offsets(int[] counts)
    {
        var offsets = new int[counts.Length];
        for (int i = 1; i < counts.Length; i++) offsets[i] = checked(offsets[i - 1] + counts[i - 1]);
        return offsets;
    }

    /// <inheritdoc/>
    public void Barrier() => Check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");

    /// <summary>Ends every rank of the job with <paramref name="exitCode"/> (MPI_Abort); for a rank that failed while
    /// the others may be waiting for it in a collective.</summary>
    public void Abort(int exitCode) => MPI_Abort(MPI_COMM_WORLD, exitCode);

    /// <summary>Finalises MPI (every rank must call it before exiting).</summary>
    public void Dispose()
    {
        if (_finalized) return;
        _finalized = true;
        MPI_Finalize();
    }
}
