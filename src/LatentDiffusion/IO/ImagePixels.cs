using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.IO;

/// <summary>
/// An 8-bit image in memory: <see cref="Data"/> holds Height × Width × Channels bytes, row-major and interleaved
/// (the layout of a decoded bitmap), with 1 channel (gray) or 3 (RGB).
/// </summary>
public sealed class ImagePixels
{
    /// <summary>Width in pixels.</summary>
    public int Width { get; }
    /// <summary>Height in pixels.</summary>
    public int Height { get; }
    /// <summary>1 (gray) or 3 (RGB).</summary>
    public int Channels { get; }
    /// <summary>Height × Width × Channels bytes, row-major, channels interleaved.</summary>
    public byte[] Data { get; }

    /// <summary>Wraps <paramref name="data"/> (not copied); checks that its length matches the size.</summary>
    public ImagePixels(int width, int height, int channels, byte[] data)
    {
        if (channels is not (1 or 3)) throw new ArgumentException($"channels must be 1 or 3, got {channels}", nameof(channels));
        if (width <= 0 || height <= 0) throw new ArgumentException($"image size must be positive, got {width}x{height}");
        if (data.Length != (long)width * height * channels)
            throw new ArgumentException($"data has {data.Length} bytes, expected {width}x{height}x{channels}", nameof(data));
        Width = width; Height = height; Channels = channels; Data = data;
    }

    /// <summary>The bytes as a uint8 tensor (C, H, W).</summary>
    public Tensor ToByteTensor()
    {
        using var hwc = torch.tensor(Data, new long[] { Height, Width, Channels }, dtype: ScalarType.Byte, device: torch.CPU);
        return hwc.permute(2, 0, 1).contiguous();
    }

    /// <summary>The image as float32 (C, H, W) in [-1, 1]: byte b maps to b / 127.5 − 1.</summary>
    public Tensor ToTensor()
    {
        using var scope = torch.NewDisposeScope();
        return ToByteTensor().to(ScalarType.Float32).div_(127.5).sub_(1.0).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Quantises a float (C, H, W) tensor in [-1, 1] to bytes as torchvision's save_image does:
    /// floor(clamp(x · 127.5 + 128, 0, 255)), i.e. round half up of (x + 1) / 2 · 255.
    /// </summary>
    public static ImagePixels FromTensor(Tensor image)
    {
        if (image.dim() != 3 || image.shape[0] is not (1 or 3))
            throw new LdmException($"expected an image tensor of shape (C, H, W) with C = 1 or 3, got ({string.Join(", ", image.shape)}); pass one image, not a batch.");
        using var scope = torch.NewDisposeScope();
        var bytes = image.detach().to(torch.CPU).to(ScalarType.Float32)
            .mul(127.5).add_(128.0).clamp_(0.0, 255.0).floor_().to(ScalarType.Byte)
            .permute(1, 2, 0).contiguous();
        int c = (int)image.shape[0], h = (int)image.shape[1], w = (int)image.shape[2];
        return new ImagePixels(w, h, c, bytes.data<byte>().ToArray());
    }
}
