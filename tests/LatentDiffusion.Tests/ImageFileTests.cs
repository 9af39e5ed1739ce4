using LatentDiffusion.IO;
using SkiaSharp;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests;

public class ImageFileTests
{
    static ImagePixels RandomPixels(int w, int h, int c, int seed)
    {
        var rng = new Random(seed);
        var data = new byte[w * h * c];
        rng.NextBytes(data);
        return new ImagePixels(w, h, c, data);
    }

    /// <summary>A PNG with an alpha channel, written by Skia directly (our writer only writes opaque images).</summary>
    static void WriteRgbaPng(string path, int w, int h, byte[] rgba)
    {
        var info = new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var bitmap = new SKBitmap(info);
        System.Runtime.InteropServices.Marshal.Copy(rgba, 0, bitmap.GetPixels(), rgba.Length);
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        File.WriteAllBytes(path, data.ToArray());
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void PngRoundTripIsExact(int channels)
    {
        string dir = RepoPaths.NewTempDir("img");
        var px = RandomPixels(13, 7, channels, 1);
        string path = Path.Combine(dir, "a.png");
        ImageFile.Write(path, px);
        var back = ImageFile.ReadPixels(path, channels);
        Assert.Equal((13, 7, channels), (back.Width, back.Height, back.Channels));
        Assert.Equal(px.Data, back.Data);
        Assert.Empty(Directory.GetFiles(dir, "*.tmp", SearchOption.AllDirectories));
    }

    [Fact]
    public void TensorRoundTripQuantisesLikeSaveImage()
    {
        string path = Path.Combine(RepoPaths.NewTempDir("img"), "t.png");
        // -1 -> 0, 0 -> 128 (x·127.5 + 128), 1 -> 255 (clamped), beyond the range clamps.
        using var t = torch.tensor(new float[] { -1f, 0f, 1f, 2f, -3f, 0.5f }, new long[] { 1, 2, 3 });
        ImageFile.Write(path, t);
        var px = ImageFile.ReadPixels(path, 1);
        Assert.Equal(new byte[] { 0, 128, 255, 255, 0, 191 }, px.Data);
        using var read = ImageFile.Read(path, 1);
        Assert.Equal(new long[] { 1, 2, 3 }, read.shape);
        Assert.Equal(ScalarType.Float32, read.dtype);
        Assert.Equal(-1f, read[0, 0, 0].item<float>());
        Assert.Equal(1f, read[0, 0, 2].item<float>());
    }

    [Fact]
    public void RgbTensorRoundTripWithinHalfLevel()
    {
        string path = Path.Combine(RepoPaths.NewTempDir("img"), "rgb.png");
        using var t = torch.rand(new long[] { 3, 9, 11 }, generator: new Generator(3)).mul_(2).sub_(1);
        ImageFile.Write(path, t);
        using var back = ImageFile.Read(path, 3);
        Assert.Equal(t.shape, back.shape);
        Assert.True((back - t).abs().max().item<float>() <= 0.5f / 127.5f + 1e-6f);
    }

    [Fact]
    public void JpegRoundTripIsClose()
    {
        string path = Path.Combine(RepoPaths.NewTempDir("img"), "a.jpg");
        // A smooth gradient survives JPEG almost unchanged.
        var data = new byte[32 * 32 * 3];
        for (int y = 0; y < 32; y++)
            for (int x = 0; x < 32; x++)
            {
                int i = (y * 32 + x) * 3;
                data[i] = (byte)(x * 8); data[i + 1] = (byte)(y * 8); data[i + 2] = 100;
            }
        ImageFile.Write(path, new ImagePixels(32, 32, 3, data));
        var bytes = File.ReadAllBytes(path);
        Assert.Equal(0xFF, bytes[0]); Assert.Equal(0xD8, bytes[1]);   // JPEG SOI marker
        var back = ImageFile.ReadPixels(path, 3);
        double mae = data.Zip(back.Data, (a, b) => Math.Abs(a - b)).Average();
        Assert.True(mae < 3.0, $"mean abs error {mae}");
        var gray = ImageFile.ReadPixels(path, 1);
        Assert.Equal(1, gray.Channels);
    }

    [Fact]
    public void RgbaIsCompositedOnWhiteAndGrayUsesLuma()
    {
        string path = Path.Combine(RepoPaths.NewTempDir("img"), "rgba.png");
        byte[] rgba =
        {
            255, 0, 0, 255,      // opaque red
            0, 0, 0, 0,          // fully transparent -> white
            0, 0, 255, 128,      // half-transparent blue
            0, 255, 0, 255,      // opaque green
        };
        WriteRgbaPng(path, 2, 2, rgba);
        var rgb = ImageFile.ReadPixels(path, 3);
        Assert.Equal(new byte[] { 255, 0, 0 }, rgb.Data[0..3]);
        Assert.Equal(new byte[] { 255, 255, 255 }, rgb.Data[3..6]);
        byte half = (byte)((255 * 127 + 127) / 255);   // 0·128 + 255·127, /255 rounded
        Assert.Equal(new byte[] { half, half, 255 }, rgb.Data[6..9]);
        var gray = ImageFile.ReadPixels(path, 1);
        // PIL 'L': (19595 R + 38470 G + 7471 B + 32768) >> 16
        Assert.Equal(76, gray.Data[0]);
        Assert.Equal(255, gray.Data[1]);
        Assert.Equal(150, gray.Data[3]);
    }

    [Fact]
    public void ZeroByteFileIsAnError()
    {
        string path = Path.Combine(RepoPaths.NewTempDir("img"), "empty.png");
        File.WriteAllBytes(path, Array.Empty<byte>());
        var e = Assert.Throws<LdmException>(() => ImageFile.ReadPixels(path, 3));
        Assert.Contains(path, e.Message);
        Assert.Contains("empty", e.Message);
    }

    [Fact]
    public void NonImageIsAnError()
    {
        string path = Path.Combine(RepoPaths.NewTempDir("img"), "notes.png");
        File.WriteAllText(path, "this is not an image at all, just some text that happens to end in .png");
        var e = Assert.Throws<LdmException>(() => ImageFile.ReadPixels(path, 3));
        Assert.Contains(path, e.Message);
        Assert.Contains("not an image", e.Message);
    }

    [Fact]
    public void TruncatedPngIsAnError()
    {
        string dir = RepoPaths.NewTempDir("img");
        string full = Path.Combine(dir, "full.png");
        ImageFile.Write(full, RandomPixels(64, 64, 3, 2));   // random pixels do not compress: a long IDAT
        var bytes = File.ReadAllBytes(full);
        string cut = Path.Combine(dir, "cut.png");
        File.WriteAllBytes(cut, bytes[..(bytes.Length / 2)]);
        var e = Assert.Throws<LdmException>(() => ImageFile.ReadPixels(cut, 3));
        Assert.Contains(cut, e.Message);
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void MissingFileIsAnError()
    {
        string path = Path.Combine(RepoPaths.NewTempDir("img"), "nope.png");
        var e = Assert.Throws<LdmException>(() => ImageFile.ReadPixels(path, 3));
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void TooSmallForTheCropIsAnErrorOnlyWhenAMinimumIsAsked()
    {
        string path = Path.Combine(RepoPaths.NewTempDir("img"), "small.png");
        ImageFile.Write(path, RandomPixels(20, 12, 3, 4));
        var e = Assert.Throws<LdmException>(() => ImageFile.LoadPixels(path, 3, size: 16, minSize: 16));
        Assert.Contains(path, e.Message);
        Assert.Contains("20x12", e.Message);
        var up = ImageFile.LoadPixels(path, 3, size: 16);   // without a minimum it is upscaled
        Assert.Equal((16, 16), (up.Width, up.Height));
    }

    [Theory]
    [InlineData(ResizeFilter.Nearest)]
    [InlineData(ResizeFilter.Bilinear)]
    [InlineData(ResizeFilter.Bicubic)]
    [InlineData(ResizeFilter.Lanczos)]
    [InlineData(ResizeFilter.Box)]
    public void CropAndResizeGiveTheAskedSize(ResizeFilter filter)
    {
        string path = Path.Combine(RepoPaths.NewTempDir("img"), "wide.png");
        ImageFile.Write(path, RandomPixels(40, 30, 3, 5));
        using var t = ImageFile.Read(path, 3, size: 16, filter: filter);
        Assert.Equal(new long[] { 3, 16, 16 }, t.shape);
        Assert.True(t.min().item<float>() >= -1f && t.max().item<float>() <= 1f);
        using var g = ImageFile.Read(path, 1, size: 48, filter: filter);
        Assert.Equal(new long[] { 1, 48, 48 }, g.shape);
    }

    [Fact]
    public void CenterCropTakesTheMiddle()
    {
        // Column index as the pixel value: a 10-wide, 4-high image cropped to 4x4 keeps columns 3..6.
        var data = new byte[10 * 4];
        for (int y = 0; y < 4; y++) for (int x = 0; x < 10; x++) data[y * 10 + x] = (byte)x;
        var crop = ImageResize.CenterCropSquare(new ImagePixels(10, 4, 1, data));
        Assert.Equal((4, 4), (crop.Width, crop.Height));
        Assert.Equal(new byte[] { 3, 4, 5, 6 }, crop.Data[0..4]);
    }

    [Fact]
    public void DownscalingAntialiases()
    {
        // A one-pixel checkerboard: point sampling gives pure black or white, an antialiased resize gives mid gray.
        var data = new byte[64 * 64];
        for (int y = 0; y < 64; y++) for (int x = 0; x < 64; x++) data[y * 64 + x] = (byte)(((x + y) & 1) * 255);
        var src = new ImagePixels(64, 64, 1, data);
        foreach (var f in new[] { ResizeFilter.Box, ResizeFilter.Bilinear, ResizeFilter.Bicubic, ResizeFilter.Lanczos })
        {
            var small = ImageResize.Resize(src, 8, 8, f);
            Assert.All(small.Data, v => Assert.InRange(v, 120, 135));
        }
        var nearest = ImageResize.Resize(src, 8, 8, ResizeFilter.Nearest);
        Assert.All(nearest.Data, v => Assert.True(v is 0 or 255));
    }

    [Fact]
    public void ResizeKeepsAConstantImageConstant()
    {
        var data = Enumerable.Repeat((byte)77, 7 * 5 * 3).ToArray();
        var src = new ImagePixels(7, 5, 3, data);
        foreach (var f in Enum.GetValues<ResizeFilter>())
        {
            Assert.All(ImageResize.Resize(src, 19, 23, f).Data, v => Assert.Equal(77, v));
            Assert.All(ImageResize.Resize(src, 3, 2, f).Data, v => Assert.Equal(77, v));
        }
    }

    [Fact]
    public void BoxDownscaleIsTheBlockMean()
    {
        var data = new byte[] { 0, 100, 10, 30, 50, 60, 200, 250 };  // 4x2 gray
        var r = ImageResize.Resize(new ImagePixels(4, 2, 1, data), 2, 1, ResizeFilter.Box);
        Assert.Equal(new byte[] { (0 + 100 + 50 + 60 + 2) / 4, (10 + 30 + 200 + 250 + 2) / 4 }, r.Data);
    }

    [Fact]
    public void GridHasMakeGridLayout()
    {
        using var images = torch.ones(new long[] { 5, 3, 8, 6 });   // white cells
        using var grid = ImageGrid.Make(images, columns: 3, padding: 2);
        Assert.Equal(new long[] { 3, 2 * (8 + 2) + 2, 3 * (6 + 2) + 2 }, grid.shape);
        Assert.Equal(-1f, grid[0, 0, 0].item<float>());          // padding
        Assert.Equal(1f, grid[0, 2, 2].item<float>());           // first cell
        Assert.Equal(1f, grid[0, 12, 12].item<float>());         // fifth cell
        Assert.Equal(-1f, grid[0, 12, 18].item<float>());        // sixth cell is empty

        string path = Path.Combine(RepoPaths.NewTempDir("grid"), "grid.png");
        ImageGrid.Save(path, images, columns: 3, padding: 2);
        var px = ImageFile.ReadPixels(path, 3);
        Assert.Equal((26, 22), (px.Width, px.Height));
        using var one = ImageGrid.Make(images[TensorIndex.Slice(0, 1)], columns: 8, padding: 0);
        Assert.Equal(new long[] { 3, 8, 6 }, one.shape);
    }
}
