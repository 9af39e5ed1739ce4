using static TorchSharp.torch;

namespace LatentDiffusion.Distributed;

/// <summary>
/// The processes that work on one job together (data-parallel training, sharded sampling): each knows its
/// <see cref="Rank"/> among <see cref="Size"/> and they exchange tensors through collectives. Every collective must be
/// called by every rank, in the same order, or the job waits forever. Tensors live on the CPU; a reduction is in place.
/// <see cref="SingleProcess"/> is the group of one (every collective is the identity), <see cref="MpiProcessGroup"/> the
/// processes of an <c>mpiexec</c> launch; <see cref="ProcessGroup.FromEnvironment"/> picks between them.
/// </summary>
public interface IProcessGroup : IDisposable
{
    /// <summary>This process's index, 0 to <see cref="Size"/> − 1.</summary>
    int Rank { get; }

    /// <summary>The number of processes.</summary>
    int Size { get; }

    /// <summary>Rank 0: the process that prints and writes files.</summary>
    bool IsMain => Rank == 0;

    /// <summary>Replaces <paramref name="tensor"/> (float32, float64, int32 or int64 on the CPU) by its sum over all ranks.</summary>
    void AllReduceSum(Tensor tensor);

    /// <summary>Replaces <paramref name="tensor"/> (float32 or float64 on the CPU) by its mean over all ranks.</summary>
    void AllReduceMean(Tensor tensor);

    /// <summary>Overwrites <paramref name="tensor"/> (any dtype, CPU) on every rank with its value on <paramref name="root"/>.</summary>
    void Broadcast(Tensor tensor, int root = 0);

    /// <summary>Every rank's <paramref name="tensor"/> concatenated along dim 0 in rank order, on every rank. The ranks
    /// may give different row counts; the other dims and the dtype must agree. The caller owns the result.</summary>
    Tensor AllGather(Tensor tensor);

    /// <summary>Every rank's <paramref name="data"/>, indexed by rank, on every rank.</summary>
    byte[][] AllGather(byte[] data);

    /// <summary>Returns once every rank has called it.</summary>
    void Barrier();
}
