using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Distributed;

/// <summary>
/// Averages a model's gradients over the ranks of a group, so every rank applies the same update: the gradient of the
/// mean loss over the global batch when each rank's loss is the mean over its equal share. The gradients live in one
/// flat buffer (the trainer lays them out so), which is all-reduced in place in slices of about
/// <see cref="DefaultBucketBytes"/> (PyTorch DDP's bucket size): a few large messages cost far less than one message
/// per parameter, and no gradient is copied.
/// </summary>
public sealed class GradientAverager
{
    /// <summary>Bytes of gradients per all-reduce call (25 MB, as torch.nn.parallel.DistributedDataParallel).</summary>
    public const long DefaultBucketBytes = 25L << 20;

    readonly IProcessGroup _group;
    readonly Tensor _gradients;
    readonly long _bucketElements;

    /// <param name="gradients">Every trained parameter's gradient in one contiguous CPU buffer, laid out alike on every rank.</param>
    /// <param name="group">The ranks to average over; with one rank <see cref="AllReduceMean"/> does nothing.</param>
    /// <param name="bucketBytes">Bytes per all-reduce call.</param>
    public GradientAverager(Tensor gradients, IProcessGroup group, long bucketBytes = DefaultBucketBytes)
    {
        if (gradients.dim() != 1 || !gradients.is_contiguous())
            throw new ArgumentException("the gradients must be one contiguous flat buffer", nameof(gradients));
        _group = group;
        _gradients = gradients;
        _bucketElements = Math.Max(1, bucketBytes / gradients.ElementSize);
    }

    /// <summary>Replaces the gradients by their mean over the ranks.</summary>
    public void AllReduceMean()
    {
        if (_group.Size == 1) return;
        using var noGrad = torch.no_grad();
        long n = _gradients.NumberOfElements;
        for (long offset = 0; offset < n; offset += _bucketElements)
        {
            using var bucket = _gradients.narrow(0, offset, Math.Min(_bucketElements, n - offset));
            _group.AllReduceMean(bucket);
        }
    }
}
