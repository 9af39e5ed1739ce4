using LatentDiffusion.Data;
using static TorchSharp.torch;

namespace LatentDiffusion.Training;

/// <summary>
/// Latent-space training data from a <see cref="LatentCache"/>: every step draws a fresh z = mean + std·ε from each
/// image's posterior (as LDM does), already multiplied by the latent scale. Horizontal flips cannot be applied to
/// latents (a mirrored latent is not the latent of the mirrored image); encode with <c>ldm encode --flip</c> instead.
/// </summary>
/// <param name="cache">The encoded data set (from <c>ldm encode</c> or <see cref="LatentCache.Open"/>); the caller keeps ownership.</param>
public sealed class LatentTrainingData(LatentCache cache) : ITrainingData
{
    /// <inheritdoc/>
    public long Count => cache.Count;

    /// <summary>The cache the latents come from (its latent scale and class names describe the model to train).</summary>
    public LatentCache Cache => cache;

    /// <inheritdoc/>
    public (Tensor x, Tensor labels) GetBatch(long[] indices, Generator generator, bool horizontalFlip)
    {
        if (horizontalFlip)
            throw new LdmException("horizontal flips (DiffusionTrainingOptions.HorizontalFlip) cannot mirror cached latents; make the cache with mirrored copies (ldm encode --flip) and train without flips.");
        using var batch = cache.GetBatch(indices, generator);
        return (batch.Latents.alias(), batch.Labels.alias());
    }

    /// <inheritdoc/>
    public string?[]? GetCaptions(long[] indices) =>
        cache.Captions.Any(c => c != null) ? indices.Select(i => cache.Captions[i]).ToArray() : null;

    /// <inheritdoc/>
    public IReadOnlyList<string?>? AllCaptions => cache.Captions.Any(c => c != null) ? cache.Captions : null;
}
