using LatentDiffusion.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Data;

/// <summary>
/// Decodes a list of image files (in parallel, results in list order) into one uint8 (N, C, S, S) tensor,
/// each image center-cropped to a square and resized to S × S. Shared by the folder data sets.
/// </summary>
static class ImageFileLoader
{
    /// <summary>
    /// Returns the stacked images and, for each input file, whether it was kept. An unreadable file raises its
    /// <see cref="LdmException"/> (the first one in list order), or is skipped when <paramref name="skipUnreadable"/>.
    /// </summary>
    public static (Tensor images, bool[] kept) Load(IReadOnlyList<string> files, int size, int channels,
        ResizeFilter filter, int minSize, bool skipUnreadable)
    {
        if (channels is not (1 or 3)) throw new LdmException($"channels must be 1 (grayscale) or 3 (RGB), got {channels}.");
        if (size <= 0) throw new LdmException($"image size must be positive, got {size}; pass a size such as 32 or 256.");
        int n = files.Count;
        var pixels = new ImagePixels?[n];
        var errors = new LdmException?[n];
        Parallel.For(0, n, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, i =>
        {
            try { pixels[i] = ImageFile.LoadPixels(files[i], channels, size, filter, minSize); }
            catch (LdmException e) { errors[i] = e; }
        });
        if (!skipUnreadable)
            foreach (var e in errors)
                if (e != null) throw new LdmException(e.Message + " (or load with skipUnreadable to skip such files)", e);

        var kept = pixels.Select(p => p != null).ToArray();
        int count = kept.Count(k => k);
        int plane = size * size;
        var chw = new byte[(long)count * channels * plane];
        int j = 0;
        foreach (var p in pixels)
        {
            if (p == null) continue;
            long baseOffset = (long)j * channels * plane;
            // Interleaved HWC -> planar CHW.
            for (int i = 0; i < plane; i++)
                for (int c = 0; c < channels; c++)
                    chw[baseOffset + (long)c * plane + i] = p.Data[i * channels + c];
            j++;
        }
        var images = torch.tensor(chw, new long[] { count, channels, size, size }, dtype: ScalarType.Byte, device: torch.CPU);
        return (images, kept);
    }
}
