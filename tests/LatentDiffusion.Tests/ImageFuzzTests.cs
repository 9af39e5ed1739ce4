using System.Buffers.Binary;
using LatentDiffusion.IO;
using SkiaSharp;

namespace LatentDiffusion.Tests;

/// <summary>
/// Seeded mutations of small valid PNG (RGB, gray) and JPEG files written by the test: bytes changed (mostly in the
/// headers), the PNG header chunk changed with a valid checksum (so the decoder reaches the sizes), the JPEG frame size
/// changed, bytes inserted or cut, the file truncated. Reading every mutant as a training image (decode, crop, resize)
/// either succeeds or throws an <see cref="LdmException"/> naming the file, never another exception.
/// </summary>
public sealed class ImageFuzzTests : IDisposable
{
    readonly string _dir = RepoPaths.NewTempDir("image-fuzz");

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    static byte[] Encoded(int channels, SKEncodedImageFormat format)
    {
        const int w = 24, h = 20;
        var data = new byte[w * h * channels];
        for (int i = 0; i < data.Length; i++) data[i] = (byte)(i * 37 % 251);
        return ImageFile.Encode(new ImagePixels(w, h, channels, data), format, quality: 90);
    }

    /// <summary>Sets the IHDR width or height of a PNG and recomputes the chunk's CRC, so the decoder trusts the change.</summary>
    static void SetPngSize(byte[] png, Random rng)
    {
        // Signature (8) | length (4) "IHDR" (4) | width (4) height (4) depth, colour, compression, filter, interlace | CRC (4).
        int field = 16 + 4 * rng.Next(2);
        uint value = rng.Next(4) switch { 0 => 0, 1 => (uint)rng.Next(1, 70000), 2 => 0x7FFFFFFF, _ => 0xFFFFFFFF };
        if (rng.Next(3) == 0) png[24 + rng.Next(5)] = (byte)rng.Next(256);   // bit depth, colour type, ... instead
        else BinaryPrimitives.WriteUInt32BigEndian(png.AsSpan(field), value);
        BinaryPrimitives.WriteUInt32BigEndian(png.AsSpan(29), Crc32(png.AsSpan(12, 17)));
    }

    /// <summary>The CRC-32 of PNG chunks (ISO 3309, as zlib's crc32).</summary>
    static uint Crc32(ReadOnlySpan<byte> bytes)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in bytes)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? 0xEDB88320 ^ (crc >> 1) : crc >> 1;
        }
        return ~crc;
    }

    /// <summary>Sets the height or width of a JPEG's start-of-frame segment (no checksum there).</summary>
    static void SetJpegSize(byte[] jpeg, Random rng)
    {
        for (int i = 2; i + 9 < jpeg.Length; i++)
            if (jpeg[i] == 0xFF && jpeg[i + 1] is 0xC0 or 0xC1 or 0xC2)
            {
                // FF C0 | length (2) | precision (1) | height (2) | width (2) | components (1)
                int at = i + 5 + 2 * rng.Next(2);
                ushort value = rng.Next(3) switch { 0 => 0, 1 => (ushort)rng.Next(1, 65536), _ => 0xFFFF };
                if (rng.Next(4) == 0) jpeg[i + 9] = (byte)rng.Next(256);   // the component count instead
                else BinaryPrimitives.WriteUInt16BigEndian(jpeg.AsSpan(at), value);
                return;
            }
    }

    static byte[] Mutate(byte[] original, bool png, Random rng)
    {
        var bytes = (byte[])original.Clone();
        switch (rng.Next(10))
        {
            case 0: return bytes[..rng.Next(bytes.Length)];                                   // truncated
            case 1:                                                                             // bytes inserted
                int at = rng.Next(bytes.Length);
                var junk = new byte[1 + rng.Next(16)];
                rng.NextBytes(junk);
                return [.. bytes[..at], .. junk, .. bytes[at..]];
            case 2:                                                                             // bytes cut out
                int from = rng.Next(bytes.Length), count = Math.Min(1 + rng.Next(32), bytes.Length - from);
                return [.. bytes[..from], .. bytes[(from + count)..]];
            case 3 or 4:
                if (png) SetPngSize(bytes, rng); else SetJpegSize(bytes, rng);
                return bytes;
            default:                                                                            // bytes changed, mostly early
                for (int i = 0, n = 1 + rng.Next(6); i < n; i++)
                {
                    int where = rng.Next(3) == 0 ? rng.Next(bytes.Length) : rng.Next(Math.Min(bytes.Length, 160));
                    bytes[where] = rng.Next(2) == 0 ? (byte)rng.Next(256) : (byte)(bytes[where] ^ (1 << rng.Next(8)));
                }
                return bytes;
        }
    }

    [Theory]
    [InlineData("png-rgb", 1200)]
    [InlineData("png-gray", 600)]
    [InlineData("jpeg", 1200)]
    public void MutatedImagesDecodeOrGiveAnLdmExceptionNamingTheFile(string kind, int cases)
    {
        bool png = kind.StartsWith("png", StringComparison.Ordinal);
        var original = Encoded(kind == "png-gray" ? 1 : 3, png ? SKEncodedImageFormat.Png : SKEncodedImageFormat.Jpeg);
        string ext = png ? ".png" : ".jpg";
        Assert.Equal(20, ImageFile.LoadPixels(Write(original, "original" + ext), 3).Height);
        var failures = new List<string>();
        int decoded = 0;
        for (int seed = 0; seed < cases && failures.Count < 5; seed++)
        {
            var rng = new Random(seed);
            string path = Write(Mutate(original, png, rng), $"m{seed}{ext}");
            try
            {
                var pixels = ImageFile.LoadPixels(path, channels: rng.Next(2) == 0 ? 1 : 3, size: 16);
                Assert.Equal(16 * 16 * pixels.Channels, pixels.Data.Length);
                decoded++;
            }
            catch (LdmException e) when (e.Message.Contains(path, StringComparison.Ordinal)) { }
            catch (Exception e) { failures.Add($"seed {seed}: {e.GetType().Name}: {e.Message.Split('\n')[0]}"); }
            finally { File.Delete(path); }
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
        Assert.InRange(decoded, 1, cases - 1);   // some mutants still decode, some do not: the mutations reach both sides
    }

    string Write(byte[] bytes, string name)
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }
}
