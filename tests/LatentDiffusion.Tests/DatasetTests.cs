using System.IO.Compression;
using System.Text.RegularExpressions;
using LatentDiffusion.Data;
using LatentDiffusion.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests;

/// <summary>A fact that is skipped (not failed) when Debian's Fashion-MNIST is not installed.</summary>
public sealed class FashionMnistFactAttribute : FactAttribute
{
    public FashionMnistFactAttribute()
    {
        if (!FashionMnist.IsAvailable())
            Skip = $"Fashion-MNIST is not installed in {FashionMnist.DefaultFolder}; run scripts/install-fashion-mnist.sh";
    }
}

public class DatasetTests
{
    // ---------- IDX ----------

    static byte[] IdxBytes(byte typeCode, int[] dims, byte[] data)
    {
        var ms = new MemoryStream();
        ms.Write(new byte[] { 0, 0, typeCode, (byte)dims.Length });
        foreach (int d in dims) ms.Write(new[] { (byte)(d >> 24), (byte)(d >> 16), (byte)(d >> 8), (byte)d });
        ms.Write(data);
        return ms.ToArray();
    }

    static void WriteMaybeGz(string path, byte[] bytes)
    {
        if (!path.EndsWith(".gz")) { File.WriteAllBytes(path, bytes); return; }
        using var fs = File.Create(path);
        using var gz = new GZipStream(fs, CompressionLevel.Fastest);
        gz.Write(bytes);
    }

    /// <summary>Writes a 5-image 4×3 IDX pair; pixel value = 10·image + position, label = image % 3.</summary>
    static (string images, string labels, byte[] pixels) WriteIdxPair(string dir, bool gz)
    {
        var pixels = new byte[5 * 4 * 3];
        for (int i = 0; i < pixels.Length; i++) pixels[i] = (byte)(10 * (i / 12) + i % 12);
        string ext = gz ? ".gz" : "";
        string img = Path.Combine(dir, "train-images-idx3-ubyte" + ext), lab = Path.Combine(dir, "train-labels-idx1-ubyte" + ext);
        WriteMaybeGz(img, IdxBytes(0x08, new[] { 5, 4, 3 }, pixels));
        WriteMaybeGz(lab, IdxBytes(0x08, new[] { 5 }, new byte[] { 0, 1, 2, 0, 1 }));
        return (img, lab, pixels);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void IdxReadsImagesAndLabels(bool gz)
    {
        var (img, lab, pixels) = WriteIdxPair(RepoPaths.NewTempDir("idx"), gz);
        using var x = IdxReader.ReadImages(img);
        Assert.Equal(new long[] { 5, 1, 4, 3 }, x.shape);
        Assert.Equal(ScalarType.Byte, x.dtype);
        Assert.Equal(pixels, x.data<byte>().ToArray());
        using var y = IdxReader.ReadLabels(lab);
        Assert.Equal(ScalarType.Int64, y.dtype);
        Assert.Equal(new long[] { 0, 1, 2, 0, 1 }, y.data<long>().ToArray());
    }

    [Fact]
    public void IdxPairBecomesADataset()
    {
        string dir = RepoPaths.NewTempDir("idx");
        // A square variant so it passes the dataset's square-image check.
        var pixels = Enumerable.Range(0, 2 * 3 * 3).Select(i => (byte)(i * 14)).ToArray();
        File.WriteAllBytes(Path.Combine(dir, "t10k-images-idx3-ubyte"), IdxBytes(0x08, new[] { 2, 3, 3 }, pixels));
        WriteMaybeGz(Path.Combine(dir, "t10k-labels-idx1-ubyte.gz"), IdxBytes(0x08, new[] { 2 }, new byte[] { 9, 4 }));
        using var ds = FashionMnist.Load(dir, train: false);
        Assert.Equal(2, ds.Count);
        Assert.Equal(1, ds.Channels);
        Assert.Equal(3, ds.ImageSize);
        Assert.Equal("Ankle boot", ds.ClassNames[9]);
        Assert.Equal(new long[] { 9, 4 }, ds.Labels.data<long>().ToArray());
        var e = Assert.Throws<LdmException>(() => FashionMnist.Load(dir, train: true));
        Assert.Contains("train-images-idx3-ubyte", e.Message);
        Assert.Contains("install-fashion-mnist", e.Message);
    }

    [Theory]
    [InlineData("magic")]
    [InlineData("type")]
    [InlineData("truncated")]
    [InlineData("trailing")]
    [InlineData("short")]
    [InlineData("badgzip")]
    public void IdxBadFilesAreErrors(string kind)
    {
        string path = Path.Combine(RepoPaths.NewTempDir("idx"), kind + (kind == "badgzip" ? ".gz" : ".idx"));
        var good = IdxBytes(0x08, new[] { 2, 2, 2 }, new byte[8]);
        byte[] bytes = kind switch
        {
            "magic" => new byte[] { 1, 2 }.Concat(good[2..]).ToArray(),
            "type" => IdxBytes(0x0D, new[] { 2, 2, 2 }, new byte[32]),
            "truncated" => good[..^3],
            "trailing" => good.Concat(new byte[] { 7 }).ToArray(),
            "short" => good[..6],
            "badgzip" => new byte[] { 0x1F, 0x8B, 8, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 },
            _ => throw new ArgumentException(kind),
        };
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<LdmException>(() => IdxReader.Read(path));
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void IdxLabelsAreNotImages()
    {
        var (_, lab, _) = WriteIdxPair(RepoPaths.NewTempDir("idx"), gz: false);
        var e = Assert.Throws<LdmException>(() => IdxReader.ReadImages(lab));
        Assert.Contains("not images", e.Message);
    }

    [FashionMnistFact]
    public void DebianFashionMnistTestSplitLoads()
    {
        using var ds = FashionMnist.Load(train: false);
        Assert.Equal(10000, ds.Count);
        Assert.Equal((1, 28), (ds.Channels, ds.ImageSize));
        using var counts = torch.bincount(ds.Labels);
        Assert.All(counts.data<long>().ToArray(), c => Assert.Equal(1000, c));
        using var batch = ds.GetBatch(new long[] { 0, 1, 2 });
        Assert.Equal(new long[] { 3, 1, 28, 28 }, batch.Images.shape);
        Assert.True(batch.Images.min().item<float>() >= -1f && batch.Images.max().item<float>() <= 1f);
    }

    // ---------- ImageDataset ----------

    static ImageDataset TinyDataset()
    {
        // 4 images 1×2×2 with pixel values 0, 85, 170, 255 laid out so a flip swaps columns.
        var bytes = new byte[4 * 4];
        for (int i = 0; i < 4; i++) { bytes[i * 4] = 0; bytes[i * 4 + 1] = 255; bytes[i * 4 + 2] = 85; bytes[i * 4 + 3] = 170; }
        return new ImageDataset(torch.tensor(bytes, new long[] { 4, 1, 2, 2 }, dtype: ScalarType.Byte),
            torch.tensor(new long[] { 0, 1, -1, 1 }), new string?[] { "a", null, "c", "d" }, new[] { "x", "y" }, "tiny");
    }

    [Fact]
    public void GetBatchScalesToMinusOneOne()
    {
        using var ds = TinyDataset();
        using var b = ds.GetBatch(new long[] { 3, 0 });
        Assert.Equal(new long[] { 2, 1, 2, 2 }, b.Images.shape);
        Assert.Equal(ScalarType.Float32, b.Images.dtype);
        Assert.Equal(new[] { -1f, 1f, 85 / 127.5f - 1, 170 / 127.5f - 1 }, b.Images[0].flatten().data<float>().ToArray());
        Assert.Equal(new long[] { 1, 0 }, b.Labels.data<long>().ToArray());
        Assert.Equal(new string?[] { "d", "a" }, b.Captions);
        Assert.Throws<ArgumentOutOfRangeException>(() => ds.GetBatch(new long[] { 4 }));
    }

    [Fact]
    public void FlipIsDeterministicFromTheGenerator()
    {
        using var ds = TinyDataset();
        var idx = Enumerable.Range(0, 64).Select(i => (long)(i % 4)).ToArray();
        using var a = ds.GetBatch(idx, new Generator(7));
        using var b = ds.GetBatch(idx, new Generator(7));
        Assert.True(a.Images.equal(b.Images).all().item<bool>());
        // Some images are flipped (first pixel is then 1), some are not (−1).
        var first = a.Images[TensorIndex.Colon, 0, 0, 0].data<float>().ToArray();
        Assert.Contains(1f, first);
        Assert.Contains(-1f, first);
        using var plain = ds.GetBatch(idx);
        Assert.All(plain.Images[TensorIndex.Colon, 0, 0, 0].data<float>().ToArray(), v => Assert.Equal(-1f, v));
    }

    // ---------- image folders ----------

    static void WriteSolid(string path, byte value, int w = 12, int h = 10)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        ImageFile.Write(path, new ImagePixels(w, h, 3, Enumerable.Repeat(value, w * h * 3).ToArray()));
    }

    [Fact]
    public void ImageFolderLabelsFollowSortedFolderOrder()
    {
        string dir = RepoPaths.NewTempDir("folder");
        // Ordinal order (as Python's sorted): "B" < "a" < "c".
        WriteSolid(Path.Combine(dir, "c", "1.png"), 30);
        WriteSolid(Path.Combine(dir, "a", "2.png"), 10);
        WriteSolid(Path.Combine(dir, "a", "1.png"), 11);
        WriteSolid(Path.Combine(dir, "B", "deep", "x.jpg"), 200);
        File.WriteAllText(Path.Combine(dir, "a", "notes.txt"), "ignored: not an image extension");
        using var ds = ImageFolderDataset.Load(dir, size: 8, channels: 3);
        Assert.Equal(new[] { "B", "a", "c" }, ds.ClassNames);
        Assert.Equal(new long[] { 0, 1, 1, 2 }, ds.Labels.data<long>().ToArray());
        Assert.Equal(new long[] { 4, 3, 8, 8 }, ds.Images.shape);
        // Files inside a class in sorted order: a/1.png (11) before a/2.png (10).
        Assert.Equal(11, ds.Images[1, 0, 0, 0].item<byte>());
        Assert.Equal(10, ds.Images[2, 0, 0, 0].item<byte>());
        Assert.Equal(0, ds.SkippedCount);
        using var gray = ImageFolderDataset.Load(dir, size: 4, channels: 1);
        Assert.Equal(new long[] { 4, 1, 4, 4 }, gray.Images.shape);
    }

    [Fact]
    public void UnreadableFilesAreAnErrorOrSkippedAndCounted()
    {
        string dir = RepoPaths.NewTempDir("folder");
        WriteSolid(Path.Combine(dir, "a", "ok.png"), 10);
        WriteSolid(Path.Combine(dir, "b", "ok.png"), 20);
        string bad = Path.Combine(dir, "b", "broken.png");
        File.WriteAllText(bad, "not a png");
        File.WriteAllBytes(Path.Combine(dir, "a", "empty.jpg"), Array.Empty<byte>());
        var e = Assert.Throws<LdmException>(() => ImageFolderDataset.Load(dir, 8, 3));
        Assert.Contains("empty.jpg", e.Message);
        using var ds = ImageFolderDataset.Load(dir, 8, 3, skipUnreadable: true);
        Assert.Equal(2, ds.SkippedCount);
        Assert.Equal(2, ds.Count);
        Assert.Equal(new long[] { 0, 1 }, ds.Labels.data<long>().ToArray());
    }

    [Fact]
    public void FolderWithoutImagesIsAnError()
    {
        string dir = RepoPaths.NewTempDir("folder");
        var e = Assert.Throws<LdmException>(() => ImageFolderDataset.Load(dir, 8, 3));
        Assert.Contains(dir, e.Message);
        Directory.CreateDirectory(Path.Combine(dir, "empty-class"));
        e = Assert.Throws<LdmException>(() => ImageFolderDataset.Load(dir, 8, 3));
        Assert.Contains("empty-class", e.Message);
        Assert.Throws<LdmException>(() => ImageFolderDataset.Load(Path.Combine(dir, "missing"), 8, 3));
    }

    [Fact]
    public void CaptionedFolderReadsCaptionsAndStringLabels()
    {
        string dir = RepoPaths.NewTempDir("captioned");
        WriteSolid(Path.Combine(dir, "img", "0.png"), 0);
        WriteSolid(Path.Combine(dir, "1.png"), 50);
        WriteSolid(Path.Combine(dir, "2.png"), 100);
        File.WriteAllLines(Path.Combine(dir, "metadata.jsonl"), new[]
        {
            """{"file_name": "img/0.png", "text": "a dog", "label": "dog"}""",
            "",
            """{"file_name": "1.png", "text": "a cat", "label": "cat"}""",
            """{"file_name": "2.png", "text": null, "label": "dog"}""",
        });
        using var ds = CaptionedFolderDataset.Load(dir, 8, 3);
        Assert.Equal(new[] { "cat", "dog" }, ds.ClassNames);
        Assert.Equal(new long[] { 1, 0, 1 }, ds.Labels.data<long>().ToArray());
        Assert.Equal(new string?[] { "a dog", "a cat", null }, ds.Captions);
        Assert.True(ds.HasCaptions && ds.HasLabels);
    }

    [Fact]
    public void CaptionedFolderIntLabelsNoLabelsAndErrors()
    {
        string dir = RepoPaths.NewTempDir("captioned");
        WriteSolid(Path.Combine(dir, "1.png"), 50);
        WriteSolid(Path.Combine(dir, "2.png"), 100);
        string meta = Path.Combine(dir, "metadata.jsonl");

        File.WriteAllLines(meta, new[] { """{"file_name": "1.png", "text": "x", "label": 2}""", """{"file_name": "2.png", "text": "y", "label": 0}""" });
        using (var ds = CaptionedFolderDataset.Load(dir, 8, 1))
        {
            Assert.Equal(new long[] { 2, 0 }, ds.Labels.data<long>().ToArray());
            Assert.Equal(3, ds.NumClasses);
        }

        File.WriteAllLines(meta, new[] { """{"file_name": "1.png", "text": "x"}""", """{"file_name": "2.png", "text": "y"}""" });
        using (var ds = CaptionedFolderDataset.Load(dir, 8, 1))
        {
            Assert.Equal(new long[] { -1, -1 }, ds.Labels.data<long>().ToArray());
            Assert.False(ds.HasLabels);
        }

        File.WriteAllLines(meta, new[] { """{"file_name": "1.png", "text": "x"}""", """{"file_name": "missing.png", "text": "y"}""" });
        var e = Assert.Throws<LdmException>(() => CaptionedFolderDataset.Load(dir, 8, 1));
        Assert.Contains("missing.png", e.Message);
        using (var ds = CaptionedFolderDataset.Load(dir, 8, 1, skipUnreadable: true))
        {
            Assert.Equal(1, ds.SkippedCount);
            Assert.Equal(new string?[] { "x" }, ds.Captions);
        }

        File.WriteAllLines(meta, new[] { """{"file_name": "1.png", "text": "x"}""", "{broken" });
        e = Assert.Throws<LdmException>(() => CaptionedFolderDataset.Load(dir, 8, 1));
        Assert.Contains("metadata.jsonl:2", e.Message);

        File.WriteAllLines(meta, new[] { """{"file_name": "1.png", "label": 1}""", """{"file_name": "2.png", "label": "cat"}""" });
        e = Assert.Throws<LdmException>(() => CaptionedFolderDataset.Load(dir, 8, 1));
        Assert.Contains("mixes", e.Message);

        File.Delete(meta);
        e = Assert.Throws<LdmException>(() => CaptionedFolderDataset.Load(dir, 8, 1));
        Assert.Contains("metadata.jsonl", e.Message);
    }

    // ---------- shapes ----------

    static readonly (byte, byte, byte)[] ShapeColours = Enum.GetValues<ShapeColour>().Select(ShapesDataset.ColourRgb).ToArray();

    static (byte, byte, byte) Pixel(ImageDataset ds, long i, int x, int y) =>
        (ds.Images[i, 0, y, x].item<byte>(), ds.Images[i, 1, y, x].item<byte>(), ds.Images[i, 2, y, x].item<byte>());

    [Fact]
    public void ShapesClassFormHasExactColoursAndClassIds()
    {
        using var ds = ShapesDataset.Generate(60, seed: 1, text: false);
        Assert.Equal(new long[] { 60, 3, 32, 32 }, ds.Images.shape);
        Assert.Equal(12, ds.NumClasses);
        Assert.Equal("red circle", ds.ClassNames[0]);
        Assert.Equal("yellow triangle", ds.ClassNames[11]);
        Assert.Equal("green square", ds.ClassNames[5]);
        var seenColours = new HashSet<(byte, byte, byte)>();
        var px = ds.Images.permute(0, 2, 3, 1).contiguous().data<byte>().ToArray();
        for (int i = 0; i < ds.Count; i++)
        {
            long label = ds.Labels[i].item<long>();
            var spec = Assert.Single(ShapesDataset.Describe(ds.Captions[i]!));
            Assert.Equal(label, spec.ClassId);
            var expected = ShapesDataset.ColourRgb(spec.Colour);
            int painted = 0;
            for (int p = 0; p < 32 * 32; p++)
            {
                var c = (px[(i * 1024 + p) * 3], px[(i * 1024 + p) * 3 + 1], px[(i * 1024 + p) * 3 + 2]);
                if (c == (255, 255, 255)) continue;
                Assert.Equal(expected, c);   // only the label's exact colour, no antialiasing
                painted++;
                seenColours.Add(c);
            }
            int side = 2 * spec.Radius;
            double fill = painted / (double)(side * side);
            switch (spec.Kind)
            {
                case ShapeKind.Square: Assert.Equal(side * side, painted); break;
                case ShapeKind.Circle: Assert.InRange(fill, 0.72, 0.85); break;    // π/4 ≈ 0.785
                case ShapeKind.Triangle: Assert.InRange(fill, 0.42, 0.58); break;  // 1/2
            }
            // The shape's bounding box is centred on its grid point.
            Assert.NotEqual((255, 255, 255), Pixel(ds, i, spec.CenterX, spec.CenterY));
            Assert.Equal((255, 255, 255), Pixel(ds, i, spec.CenterX + spec.Radius, spec.CenterY));
        }
        Assert.Equal(4, seenColours.Count);
        Assert.Subset(ShapeColours.ToHashSet(), seenColours);
    }

    [Fact]
    public void ShapesAreSymmetricAndSized()
    {
        foreach (var kind in Enum.GetValues<ShapeKind>())
            foreach (var size in Enum.GetValues<ShapeSize>())
            {
                var s = new ShapeSpec(kind, ShapeColour.Red, size, ShapePosition.Center);
                int r = s.Radius, minX = 99, maxX = -1, minY = 99, maxY = -1;
                for (int y = 0; y < 32; y++)
                    for (int x = 0; x < 32; x++)
                    {
                        if (!s.Covers(x, y)) continue;
                        Assert.True(s.Covers(31 - x, y), $"{kind} {size} is not mirror symmetric at ({x}, {y})");
                        if (kind != ShapeKind.Triangle) Assert.True(s.Covers(x, 31 - y));
                        (minX, maxX, minY, maxY) = (Math.Min(minX, x), Math.Max(maxX, x), Math.Min(minY, y), Math.Max(maxY, y));
                    }
                // Extent is 2r pixels wide and high: [cx − r, cx + r), except the triangle's apex row (its pixel
                // centres lie a quarter pixel outside the edges at the apex).
                Assert.Equal((16 - r, 15 + r), (minX, maxX));
                Assert.Equal((kind == ShapeKind.Triangle ? 17 - r : 16 - r, 15 + r), (minY, maxY));
            }
    }

    [Fact]
    public void ShapesAreDeterministicFromTheSeed()
    {
        using var a = ShapesDataset.Generate(20, seed: 5, text: true);
        using var b = ShapesDataset.Generate(20, seed: 5, text: true);
        using var c = ShapesDataset.Generate(20, seed: 6, text: true);
        Assert.True(a.Images.equal(b.Images).all().item<bool>());
        Assert.Equal(a.Captions, b.Captions);
        Assert.NotEqual(a.Captions, c.Captions);
    }

    [Fact]
    public void ShapesCaptionsHaveTheDesignFormat()
    {
        Assert.Equal("a large red circle at the top left",
            ShapesDataset.Caption([new ShapeSpec(ShapeKind.Circle, ShapeColour.Red, ShapeSize.Large, ShapePosition.TopLeft)]));
        Assert.Equal("a small blue square at the top left and a large yellow triangle at the bottom right",
            ShapesDataset.Caption([
                new ShapeSpec(ShapeKind.Square, ShapeColour.Blue, ShapeSize.Small, ShapePosition.TopLeft),
                new ShapeSpec(ShapeKind.Triangle, ShapeColour.Yellow, ShapeSize.Large, ShapePosition.BottomRight)]));
        var phrase = "a (small|large) (red|green|blue|yellow) (circle|square|triangle) at the (top left|top right|bottom left|bottom right|top|bottom|left|right|center)";
        var re = new Regex($"^{phrase}( and {phrase})?$");
        using var ds = ShapesDataset.Generate(200, seed: 2, text: true);
        int twos = 0;
        for (int i = 0; i < ds.Count; i++)
        {
            string cap = ds.Captions[i]!;
            Assert.Matches(re, cap);
            var specs = ShapesDataset.Describe(cap);
            Assert.Equal(cap, ShapesDataset.Caption(specs));
            Assert.Equal(specs.Length == 1 ? specs[0].ClassId : -1, ds.Labels[i].item<long>());
            if (specs.Length == 2) twos++;
        }
        Assert.InRange(twos, 60, 140);
        Assert.Null(ShapesDataset.TryDescribe("a purple circle at the top"));
        Assert.Throws<LdmException>(() => ShapesDataset.Describe("a small red circle at the middle"));
    }

    [Fact]
    public void TheShareOfTwoShapeImagesIsASettingWhoseDefaultKeepsTheOldDraws()
    {
        int Twos(ShapeSpec[][] scenes) => scenes.Count(s => s.Length == 2);
        var byDefault = ShapesDataset.GenerateScenes(1000, seed: 5, text: true);
        Assert.Equal(byDefault.Select(ShapesDataset.Caption), ShapesDataset.GenerateScenes(1000, seed: 5, text: true, twoShapePercent: 50).Select(ShapesDataset.Caption));
        Assert.InRange(Twos(ShapesDataset.GenerateScenes(1000, seed: 5, text: true, twoShapePercent: 90)), 860, 940);
        Assert.Equal(0, Twos(ShapesDataset.GenerateScenes(200, seed: 5, text: true, twoShapePercent: 0)));
        Assert.Equal(200, Twos(ShapesDataset.GenerateScenes(200, seed: 5, text: true, twoShapePercent: 100)));
        Assert.Throws<LdmOptionException>(() => ShapesDataset.GenerateScenes(10, seed: 5, text: true, twoShapePercent: 101));
        using var data = ShapesDataset.Generate(8, seed: 5, text: true, twoShapePercent: 90);
        Assert.Equal("shapes(text, seed=5, two=90%)", data.Source);
    }

    [Fact]
    public void TwoShapeImagesNeverOverlap()
    {
        var scenes = ShapesDataset.GenerateScenes(300, seed: 3, text: true);
        using var ds = ShapesDataset.Generate(300, seed: 3, text: true);
        var px = ds.Images.permute(0, 2, 3, 1).contiguous().data<byte>().ToArray();
        int checkedTwo = 0;
        for (int i = 0; i < scenes.Length; i++)
        {
            var s = scenes[i];
            if (s.Length != 2) continue;
            checkedTwo++;
            var (a, b) = (s[0], s[1]);
            Assert.True(Math.Abs(a.CenterX - b.CenterX) == 16 || Math.Abs(a.CenterY - b.CenterY) == 16);
            for (int y = 0; y < 32; y++)
                for (int x = 0; x < 32; x++)
                {
                    Assert.False(a.Covers(x, y) && b.Covers(x, y), $"image {i}: shapes overlap at ({x}, {y})");
                    var expected = a.Covers(x, y) ? a.Rgb : b.Covers(x, y) ? b.Rgb : ShapesDataset.Background;
                    int o = (i * 1024 + y * 32 + x) * 3;
                    Assert.Equal(expected, (px[o], px[o + 1], px[o + 2]));
                }
        }
        Assert.True(checkedTwo > 100);
        Assert.False(ShapesDataset.CanPair(ShapePosition.Center, ShapePosition.Top));
        Assert.True(ShapesDataset.CanPair(ShapePosition.TopLeft, ShapePosition.BottomRight));
        Assert.False(ShapesDataset.CanPair(ShapePosition.Top, ShapePosition.Left));
    }
}
