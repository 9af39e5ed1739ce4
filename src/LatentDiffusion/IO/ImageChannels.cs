using static TorchSharp.torch;

namespace LatentDiffusion.IO;

/// <summary>Gray and RGB image batches (N, C, H, W) turned into one another.</summary>
public static class ImageChannels
{
    /// <summary><paramref name="x"/> with <paramref name="channels"/> channels: gray to RGB by repetition, RGB to gray by
    /// the channel average, unchanged when it already has them; null for any other pair (the caller says what to pass).</summary>
    public static Tensor? Convert(Tensor x, int channels) => (x.shape[1], channels) switch
    {
        var (c, want) when c == want => x,
        (1, 3) => x.expand(-1, 3, -1, -1),
        (3, 1) => x.mean([1], keepdim: true),
        _ => null,
    };
}
