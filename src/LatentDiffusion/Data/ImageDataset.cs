using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Data;

/// <summary>One batch drawn from an <see cref="ImageDataset"/>: float32 images (B, C, H, W) in [-1, 1],
/// int64 labels (B) (−1 where unlabelled) and the captions (null where uncaptioned).</summary>
/// <param name="images">The images; owned by the batch.</param>
/// <param name="labels">The labels; owned by the batch.</param>
/// <param name="captions">One caption per image, null where there is none.</param>
public sealed class ImageBatch(Tensor images, Tensor labels, string?[] captions) : IDisposable
{
    /// <summary>float32 (B, C, H, W) in [-1, 1].</summary>
    public Tensor Images { get; } = images;
    /// <summary>int64 (B); −1 where an image has no label.</summary>
    public Tensor Labels { get; } = labels;
    /// <summary>One caption per image, null where there is none.</summary>
    public string?[] Captions { get; } = captions;

    /// <summary>Frees the images and labels.</summary>
    public void Dispose()
    {
        Images.Dispose();
        Labels.Dispose();
    }
}

/// <summary>
/// An in-memory image data set: uint8 images (N, C, S, S), int64 labels (N) with −1 for "no label", optional captions,
/// and class names. Images are kept as bytes (a quarter of float32) and turned into [-1, 1] floats per batch.
/// </summary>
public sealed class ImageDataset : IDisposable
{
    /// <summary>uint8 (N, C, S, S).</summary>
    public Tensor Images { get; }
    /// <summary>int64 (N); −1 where an image has no label.</summary>
    public Tensor Labels { get; }
    /// <summary>One caption per image, null where there is none.</summary>
    public string?[] Captions { get; }
    /// <summary>Class names by label id (empty when unlabelled).</summary>
    public IReadOnlyList<string> ClassNames { get; }
    /// <summary>Where the data came from (a folder, a file, "shapes(seed=…)"), for messages and logs.</summary>
    public string Source { get; }
    /// <summary>How many unreadable files were skipped while loading (0 unless skipping was asked for).</summary>
    public int SkippedCount { get; }

    /// <summary>Number of images (N).</summary>
    public long Count => Images.shape[0];
    /// <summary>1 (grayscale) or 3 (RGB).</summary>
    public int Channels => (int)Images.shape[1];
    /// <summary>Side of the square images in pixels (S).</summary>
    public int ImageSize => (int)Images.shape[2];
    /// <summary>Number of class names (0 when unlabelled).</summary>
    public int NumClasses => ClassNames.Count;
    /// <summary>At least one image has a label (≥ 0).</summary>
    public bool HasLabels { get; }
    /// <summary>At least one image has a caption.</summary>
    public bool HasCaptions { get; }

    /// <summary>Takes ownership of <paramref name="images"/> and <paramref name="labels"/> (disposed with the data set).</summary>
    public ImageDataset(Tensor images, Tensor labels, string?[] captions, IReadOnlyList<string> classNames, string source, int skippedCount = 0)
    {
        if (images.dtype != ScalarType.Byte || images.dim() != 4 || images.shape[1] is not (1 or 3) || images.shape[2] != images.shape[3])
            throw new ArgumentException($"images must be uint8 (N, C, S, S) with C = 1 or 3, got {images.dtype} ({string.Join(", ", images.shape)})", nameof(images));
        long n = images.shape[0];
        if (labels.dtype != ScalarType.Int64 || labels.dim() != 1 || labels.shape[0] != n)
            throw new ArgumentException($"labels must be int64 ({n}), got {labels.dtype} ({string.Join(", ", labels.shape)})", nameof(labels));
        if (captions.Length != n)
            throw new ArgumentException($"expected {n} captions, got {captions.Length}", nameof(captions));
        if (images.device_type != DeviceType.CPU || labels.device_type != DeviceType.CPU || !images.is_contiguous())
            throw new ArgumentException("images and labels must be contiguous CPU tensors");
        Images = images;
        Labels = labels;
        Captions = captions;
        ClassNames = classNames;
        Source = source;
        SkippedCount = skippedCount;
        HasCaptions = captions.Any(c => c != null);
        if (n > 0)
        {
            long min = Labels.min().item<long>(), max = Labels.max().item<long>();
            HasLabels = max >= 0;
            if (min < -1 || (classNames.Count > 0 && max >= classNames.Count))
                throw new ArgumentException($"labels must lie in [-1, {classNames.Count - 1}], got [{min}, {max}]", nameof(labels));
        }
    }

    /// <summary>
    /// The images at <paramref name="indices"/> as float32 [-1, 1] (byte b → b / 127.5 − 1), with their labels and captions.
    /// With <paramref name="flipGen"/>, each image is mirrored left-right with probability ½, drawn from that generator.
    /// </summary>
    public ImageBatch GetBatch(long[] indices, Generator? flipGen = null)
    {
        long n = Count;
        foreach (long i in indices)
            if (i < 0 || i >= n) throw new ArgumentOutOfRangeException(nameof(indices), $"index {i} is outside the data set of {n} images");
        using var scope = torch.NewDisposeScope();
        // Data sets live on the CPU; a trainer moves each batch to its device.
        var idx = torch.tensor(indices, ScalarType.Int64, device: torch.CPU);
        var x = Images.index_select(0, idx).to(ScalarType.Float32).div_(127.5).sub_(1.0);
        if (flipGen != null && indices.Length > 0)
        {
            var flip = torch.rand(new long[] { indices.Length }, generator: flipGen, device: torch.CPU).lt(0.5).view(-1, 1, 1, 1);
            x = torch.where(flip, x.flip(3), x);
        }
        var labels = Labels.index_select(0, idx);
        var captions = indices.Select(i => Captions[i]).ToArray();
        return new ImageBatch(x.MoveToOuterDisposeScope(), labels.MoveToOuterDisposeScope(), captions);
    }

    /// <summary>A new data set holding the images at <paramref name="indices"/> (copied), same class names.</summary>
    public ImageDataset Subset(long[] indices)
    {
        using var idx = torch.tensor(indices, ScalarType.Int64, device: torch.CPU);
        return new ImageDataset(Images.index_select(0, idx), Labels.index_select(0, idx),
            indices.Select(i => Captions[i]).ToArray(), ClassNames, Source);
    }

    /// <summary>Frees the images and labels.</summary>
    public void Dispose()
    {
        Images.Dispose();
        Labels.Dispose();
    }
}
