using LatentDiffusion.Data;
using static TorchSharp.torch;

namespace LatentDiffusion.Training;

/// <summary>What the diffusion trainer reads: a fixed-size set of examples (pixels or latents) with class labels.</summary>
public interface ITrainingData
{
    long Count { get; }
    /// <summary>(x (N, C, H, W) float32 in the model's space, labels int64 (N,)); random augmentation from <paramref name="generator"/>.</summary>
    (Tensor x, Tensor labels) GetBatch(long[] indices, Generator generator, bool horizontalFlip);
}

/// <summary>Pixel-space training data: images in [-1, 1] straight from an <see cref="ImageDataset"/>.</summary>
public sealed class PixelTrainingData(ImageDataset dataset) : ITrainingData
{
    public long Count => dataset.Count;

    public (Tensor x, Tensor labels) GetBatch(long[] indices, Generator generator, bool horizontalFlip)
    {
        using var batch = dataset.GetBatch(indices, horizontalFlip ? generator : null);
        return (batch.Images.alias(), batch.Labels.alias());
    }
}
