using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Distributed;

/// <summary>
/// Averages the gradients of a model's parameters over the ranks of a group, so every rank applies the same update:
/// the gradient of the mean loss over the global batch when each rank's loss is the mean over its equal share.
/// Parameters are packed into flat buffers of about <see cref="DefaultBucketBytes"/> (PyTorch DDP's default) and each
/// buffer is all-reduced in one call: a few large messages cost far less than one message per parameter.
/// </summary>
public sealed class GradientAverager : IDisposable
{
    /// <summary>Bytes of gradients per all-reduce call (25 MB, as torch.nn.parallel.DistributedDataParallel).</summary>
    public const long DefaultBucketBytes = 25L << 20;

    readonly IProcessGroup _group;
    readonly List<(Tensor[] parameters, Tensor flat)> _buckets = [];

    /// <param name="parameters">The trained parameters, in the same order on every rank.</param>
    /// <param name="group">The ranks to average over; with one rank <see cref="AllReduceMean"/> does nothing.</param>
    /// <param name="bucketBytes">Bytes per flat buffer (a parameter larger than this gets a buffer of its own).</param>
    public GradientAverager(IEnumerable<Tensor> parameters, IProcessGroup group, long bucketBytes = DefaultBucketBytes)
    {
        _group = group;
        if (group.Size == 1) return;
        var current = new List<Tensor>();
        long bytes = 0;
        foreach (var p in parameters.Where(p => p.requires_grad))
        {
            bool sameDtype = current.Count == 0 || current[0].dtype == p.dtype;
            if (current.Count > 0 && (!sameDtype || bytes + p.NumberOfElements * p.ElementSize > bucketBytes))
            {
                AddBucket(current);
                current = [];
                bytes = 0;
            }
            current.Add(p);
            bytes += p.NumberOfElements * p.ElementSize;
        }
        if (current.Count > 0) AddBucket(current);
    }

    void AddBucket(List<Tensor> parameters) =>
        _buckets.Add((parameters.ToArray(), torch.empty(parameters.Sum(p => p.NumberOfElements), dtype: parameters[0].dtype, device: torch.CPU)));

    /// <summary>Replaces every parameter's gradient by its mean over the ranks (a missing gradient counts as zero and
    /// is created, so every rank updates the same parameters).</summary>
    public void AllReduceMean()
    {
        if (_group.Size == 1) return;
        using var noGrad = torch.no_grad();
        foreach (var (parameters, flat) in _buckets)
        {
            using var scope = torch.NewDisposeScope();
            long offset = 0;
            foreach (var p in parameters)
            {
                var part = flat.narrow(0, offset, p.NumberOfElements);
                if (p.grad is { } g) part.copy_(g.reshape(-1));
                else part.zero_();
                offset += p.NumberOfElements;
            }
            _group.AllReduceMean(flat);
            offset = 0;
            foreach (var p in parameters)
            {
                var part = flat.narrow(0, offset, p.NumberOfElements).view(p.shape);
                if (p.grad is { } g) g.copy_(part);
                else p.grad = part.clone().DetachFromDisposeScope();
                offset += p.NumberOfElements;
            }
        }
    }

    /// <summary>Frees the flat buffers.</summary>
    public void Dispose()
    {
        foreach (var (_, flat) in _buckets) flat.Dispose();
        _buckets.Clear();
    }
}
