using LatentDiffusion.Distributed;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Evaluation;

/// <summary>
/// A batch of images to evaluate: <see cref="Images"/> uint8 (N, C, H, W) — what would be saved as PNG — and,
/// for class-conditional data, <see cref="Labels"/> int64 (N).
/// </summary>
public sealed class SampleBatch : IDisposable
{
    /// <summary>uint8 (N, C, H, W).</summary>
    public Tensor Images { get; }
    /// <summary>int64 class labels (N), or null for unlabelled images.</summary>
    public Tensor? Labels { get; }

    /// <summary>A batch owning <paramref name="images"/> (uint8 NCHW) and <paramref name="labels"/> (one per image); use <see cref="FromSigned"/> for float images.</summary>
    public SampleBatch(Tensor images, Tensor? labels = null)
    {
        if (images.dim() != 4 || images.dtype != ScalarType.Byte)
            throw new LdmException($"an image batch must be uint8 (N, C, H, W), got {images.dtype} [{string.Join(",", images.shape)}]; quantise with SampleBatch.FromSigned.");
        if (labels is not null && labels.shape[0] != images.shape[0])
            throw new LdmException($"{images.shape[0]} images but {labels.shape[0]} labels in a batch; give one label per image.");
        Images = images;
        Labels = labels;
    }

    /// <summary>From float images in [-1, 1] (a decoder's output), quantised as torchvision's save_image:
    /// floor(clamp(x·127.5 + 128, 0, 255)).</summary>
    public static SampleBatch FromSigned(Tensor images, Tensor? labels = null)
    {
        var bytes = images.detach().cpu().to(ScalarType.Float32).mul(127.5).add(128.0).clamp(0.0, 255.0).floor().to(ScalarType.Byte);
        return new SampleBatch(bytes, labels?.detach().cpu().to(ScalarType.Int64));
    }

    /// <summary>Disposes the images and labels.</summary>
    public void Dispose() { Images.Dispose(); Labels?.Dispose(); }
}

/// <summary>
/// Where images to evaluate come from: a folder, an .npz of samples, a data set, or a sampler running a diffusion
/// checkpoint. Batches are produced lazily; the consumer disposes each batch.
/// </summary>
public interface ISampleSource
{
    /// <summary>Says what the images are (a path, "fashion-mnist test", "DiT-S/2 ckpt, DDIM 50 steps").</summary>
    string Description { get; }

    /// <summary>How many images the source will give, when known in advance.</summary>
    long? Count { get; }

    /// <summary>Images in batches of at most <paramref name="batchSize"/>, at most <paramref name="limit"/> in all.</summary>
    IEnumerable<SampleBatch> Batches(int batchSize, long? limit = null);

    /// <summary>How many consecutive images must stay in one rank's share when the images are split among ranks: a
    /// sampler's model batch (its random draws run batch by batch); 1 for stored images.</summary>
    int ShardAlignment => 1;

    /// <summary>
    /// The images <paramref name="part"/> covers among those of <see cref="Batches(int, long?)"/> (one rank's share,
    /// its start a multiple of <see cref="ShardAlignment"/>), with the same values, in batches of at most
    /// <paramref name="batchSize"/>. This default reads the images before the part and drops them; a source that can
    /// seek, or that must replay (a sampler), does better.
    /// </summary>
    IEnumerable<SampleBatch> Batches(int batchSize, Shard part)
    {
        long offset = 0;
        foreach (var batch in Batches(batchSize, part.End))
        {
            long n = batch.Images.shape[0], from = Math.Max(offset, part.Start), to = Math.Min(offset + n, part.End);
            if (to - from == n) yield return batch;
            else
            {
                using (batch)
                    if (to > from)
                        yield return new SampleBatch(batch.Images.narrow(0, from - offset, to - from).clone(),
                            batch.Labels?.narrow(0, from - offset, to - from).clone());
            }
            offset += n;
        }
    }
}
