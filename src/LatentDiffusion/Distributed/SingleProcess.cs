using static TorchSharp.torch;

namespace LatentDiffusion.Distributed;

/// <summary>
/// The group of one process: every collective is the identity, so code written for a group runs unchanged (and with
/// the same numbers) without MPI. What <c>ldm</c> uses when it was not launched by <c>mpiexec</c>.
/// </summary>
public sealed class SingleProcess : IProcessGroup
{
    /// <summary>The one instance (it holds no state).</summary>
    public static SingleProcess Instance { get; } = new();

    SingleProcess() { }

    /// <inheritdoc/>
    public int Rank => 0;
    /// <inheritdoc/>
    public int Size => 1;
    /// <inheritdoc/>
    public void AllReduceSum(Tensor tensor) { }
    /// <inheritdoc/>
    public void AllReduceMean(Tensor tensor) { }
    /// <inheritdoc/>
    public void Broadcast(Tensor tensor, int root = 0)
    {
        if (root != 0) throw new LdmException($"rank {root} does not exist in a single process; broadcast from rank 0.");
    }
    /// <inheritdoc/>
    public Tensor AllGather(Tensor tensor) => tensor.clone();
    /// <inheritdoc/>
    public byte[][] AllGather(byte[] data) => [data];
    /// <inheritdoc/>
    public void Barrier() { }
    /// <summary>Nothing to release.</summary>
    public void Dispose() { }
}
