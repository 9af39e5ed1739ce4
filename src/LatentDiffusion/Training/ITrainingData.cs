using LatentDiffusion.Data;
using static TorchSharp.torch;

namespace LatentDiffusion.Training;

/// <summary>What the diffusion trainer reads: a fixed-size set of examples (pixels or latents) with class labels and, for text models, captions.</summary>
public interface ITrainingData
{
    /// <summary>Number of examples; indices run from 0 to Count − 1.</summary>
    long Count { get; }
    /// <summary>(x (N, C, H, W) float32 in the model's space, labels int64 (N,)); random augmentation from <paramref name="generator"/>.</summary>
    (Tensor x, Tensor labels) GetBatch(long[] indices, Generator generator, bool horizontalFlip);

    /// <summary>The captions of the examples at <paramref name="indices"/> (null = no caption, trained as the empty caption); null when the data has none.</summary>
    string?[]? GetCaptions(long[] indices) => null;

    /// <summary>Every caption of the data (for building a vocabulary); null when the data has none.</summary>
    IReadOnlyList<string?>? AllCaptions => null;
}

/// <summary>Pixel-space training data: images in [-1, 1] straight from an <see cref="ImageDataset"/>.</summary>
/// <param name="dataset">The images (and labels, captions) to train on; the caller keeps ownership.</param>
public sealed class PixelTrainingData(ImageDataset dataset) : ITrainingData
{
    /// <inheritdoc/>
    public long Count => dataset.Count;

    /// <inheritdoc/>
    public (Tensor x, Tensor labels) GetBatch(long[] indices, Generator generator, bool horizontalFlip)
    {
        using var batch = dataset.GetBatch(indices, horizontalFlip ? generator : null);
        return (batch.Images.alias(), batch.Labels.alias());
    }

    /// <inheritdoc/>
    public string?[]? GetCaptions(long[] indices) => dataset.HasCaptions ? indices.Select(i => dataset.Captions[i]).ToArray() : null;

    /// <inheritdoc/>
    public IReadOnlyList<string?>? AllCaptions => dataset.HasCaptions ? dataset.Captions : null;
}
