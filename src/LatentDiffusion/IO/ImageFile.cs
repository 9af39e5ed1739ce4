using SkiaSharp;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.IO;

/// <summary>
/// Image files through SkiaSharp: read any format its codecs decode (PNG, JPEG, WebP, GIF (first frame), BMP, ICO, WBMP,
/// HEIF where the platform has it) to 8-bit gray or RGB, and write PNG (or JPEG by extension).
/// Colour conversion follows PIL: transparency is composited on white, and gray is ITU-R 601-2 luma
/// L = (19595 R + 38470 G + 7471 B + 32768) >> 16, the fixed-point form of 0.299 R + 0.587 G + 0.114 B that PIL's
/// <c>convert('L')</c> uses. EXIF orientation is not applied (as PIL without exif_transpose).
/// </summary>
public static class ImageFile
{
    /// <summary>File extensions treated as images when scanning folders.</summary>
    public static readonly IReadOnlySet<string> Extensions = new HashSet<string>(StringComparer.OrdinalIgnoreCase)
    {
        ".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".ico", ".wbmp", ".heic", ".heif", ".avif",
    };

    /// <summary>True when the path's extension is one of <see cref="Extensions"/>.</summary>
    public static bool HasImageExtension(string path) => Extensions.Contains(Path.GetExtension(path));

    /// <summary>Decodes an image file to 8-bit pixels with 1 (gray) or 3 (RGB) channels.</summary>
    public static ImagePixels ReadPixels(string path, int channels)
    {
        if (channels is not (1 or 3))
            throw new LdmException($"cannot read '{path}' with {channels} channels; use 1 (grayscale) or 3 (RGB).");
        byte[] encoded = ReadAllBytes(path);
        if (encoded.Length == 0)
            throw new LdmException($"'{path}' is empty (0 bytes), not an image; delete it or replace it with a valid PNG/JPEG.");

        // The codec takes ownership of the stream and disposes it with itself.
        using var codec = SKCodec.Create(new SKMemoryStream(encoded), out SKCodecResult createResult);
        if (codec == null)
            throw new LdmException($"'{path}' is not an image SkiaSharp can decode ({createResult}); use PNG or JPEG, or remove the file.");

        var info = new SKImageInfo(codec.Info.Width, codec.Info.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        if (info.Width <= 0 || info.Height <= 0)
            throw new LdmException($"'{path}' has an invalid size {info.Width}x{info.Height}; replace the file.");
        var rgba = new byte[info.BytesSize64];
        SKCodecResult result;
        unsafe
        {
            fixed (byte* p = rgba) result = codec.GetPixels(info, (IntPtr)p);
        }
        switch (result)
        {
            case SKCodecResult.Success:
                break;
            case SKCodecResult.IncompleteInput:
                throw new LdmException($"'{path}' is truncated ({codec.EncodedFormat} data ends early); re-download or re-export the image.");
            case SKCodecResult.ErrorInInput:
                throw new LdmException($"'{path}' is corrupted ({codec.EncodedFormat} data has errors); re-download or re-export the image.");
            default:
                throw new LdmException($"'{path}' cannot be decoded ({codec.EncodedFormat}: {result}); convert it to PNG or JPEG.");
        }
        return FromRgba(rgba, info.Width, info.Height, channels);
    }

    /// <summary>
    /// Reads an image as 8-bit pixels, optionally center-cropped to a square and resized to size × size.
    /// <paramref name="minSize"/> &gt; 0 rejects images whose shorter side is below it (instead of upscaling them).
    /// </summary>
    public static ImagePixels LoadPixels(string path, int channels, int? size = null,
        ResizeFilter filter = ResizeFilter.Bicubic, int minSize = 0)
    {
        var img = ReadPixels(path, channels);
        int shorter = Math.Min(img.Width, img.Height);
        if (minSize > 0 && shorter < minSize)
            throw new LdmException($"'{path}' is {img.Width}x{img.Height}, smaller than the required {minSize}x{minSize} crop; remove it or lower the minimum size.");
        if (size is int s)
        {
            if (s <= 0) throw new LdmException($"image size must be positive, got {s}; pass a size such as 32 or 256.");
            img = ImageResize.Resize(ImageResize.CenterCropSquare(img), s, s, filter);
        }
        return img;
    }

    /// <summary>Reads an image as a float32 (C, H, W) tensor in [-1, 1]; see <see cref="LoadPixels"/>.</summary>
    public static Tensor Read(string path, int channels, int? size = null,
        ResizeFilter filter = ResizeFilter.Bicubic, int minSize = 0) =>
        LoadPixels(path, channels, size, filter, minSize).ToTensor();

    /// <summary>
    /// Writes a (C, H, W) tensor in [-1, 1] (C = 1 or 3), quantised as <see cref="ImagePixels.FromTensor"/>, atomically.
    /// The format follows the extension: .jpg/.jpeg writes JPEG (quality 95), anything else PNG.
    /// </summary>
    public static void Write(string path, Tensor image) => Write(path, ImagePixels.FromTensor(image));

    /// <summary>Writes 8-bit pixels as PNG (or JPEG for .jpg/.jpeg, quality 95), atomically.</summary>
    public static void Write(string path, ImagePixels image)
    {
        string ext = Path.GetExtension(path).ToLowerInvariant();
        var format = ext is ".jpg" or ".jpeg" ? SKEncodedImageFormat.Jpeg : SKEncodedImageFormat.Png;
        byte[] encoded = Encode(image, format, quality: format == SKEncodedImageFormat.Jpeg ? 95 : 100);
        AtomicFile.WriteAllBytes(path, encoded);
    }

    /// <summary>Encodes pixels in memory (PNG or JPEG).</summary>
    public static byte[] Encode(ImagePixels image, SKEncodedImageFormat format, int quality = 100)
    {
        SKImageInfo info;
        byte[] pixels;
        if (image.Channels == 1)
        {
            info = new SKImageInfo(image.Width, image.Height, SKColorType.Gray8, SKAlphaType.Opaque);
            pixels = image.Data;
        }
        else
        {
            // Skia has no packed 24-bit RGB colour type: expand to opaque RGBA (the PNG encoder drops the constant alpha).
            info = new SKImageInfo(image.Width, image.Height, SKColorType.Rgba8888, SKAlphaType.Opaque);
            pixels = new byte[image.Width * image.Height * 4];
            for (int i = 0, j = 0; i < image.Data.Length; i += 3, j += 4)
            {
                pixels[j] = image.Data[i]; pixels[j + 1] = image.Data[i + 1]; pixels[j + 2] = image.Data[i + 2]; pixels[j + 3] = 255;
            }
        }
        unsafe
        {
            fixed (byte* p = pixels)
            {
                using var pixmap = new SKPixmap(info, (IntPtr)p, info.RowBytes);
                using var encodedData = pixmap.Encode(format, quality)
                    ?? throw new InvalidOperationException($"SkiaSharp failed to encode a {image.Width}x{image.Height} {format} image");
                return encodedData.ToArray();
            }
        }
    }

    static byte[] ReadAllBytes(string path)
    {
        try { return File.ReadAllBytes(path); }
        catch (FileNotFoundException) { throw new LdmException($"image not found: '{path}'; check the path."); }
        catch (DirectoryNotFoundException) { throw new LdmException($"image not found: '{path}'; check the path."); }
        catch (UnauthorizedAccessException) { throw new LdmException($"cannot read '{path}': permission denied; check the file's permissions."); }
        catch (IOException e) { throw new LdmException($"cannot read '{path}': {e.Message}; check the file.", e); }
    }

    /// <summary>Unpremultiplied RGBA -> gray or RGB, compositing on white: c' = (c·a + 255·(255 − a)) / 255, rounded.</summary>
    static ImagePixels FromRgba(byte[] rgba, int width, int height, int channels)
    {
        int n = width * height;
        var dst = new byte[n * channels];
        for (int i = 0; i < n; i++)
        {
            int a = rgba[4 * i + 3];
            int r = rgba[4 * i], g = rgba[4 * i + 1], b = rgba[4 * i + 2];
            if (a != 255)
            {
                int white = 255 * (255 - a);
                r = (r * a + white + 127) / 255;
                g = (g * a + white + 127) / 255;
                b = (b * a + white + 127) / 255;
            }
            if (channels == 1)
                dst[i] = (byte)((19595 * r + 38470 * g + 7471 * b + 32768) >> 16);
            else
            {
                dst[3 * i] = (byte)r; dst[3 * i + 1] = (byte)g; dst[3 * i + 2] = (byte)b;
            }
        }
        return new ImagePixels(width, height, channels, dst);
    }
}
