using LatentDiffusion.Data;
using LatentDiffusion.Evaluation;
using LatentDiffusion.IO;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests;

public class ShapesCheckerTests
{
    static IEnumerable<ShapeSpec> AllSingleShapes() =>
        from kind in Enum.GetValues<ShapeKind>()
        from colour in Enum.GetValues<ShapeColour>()
        from size in Enum.GetValues<ShapeSize>()
        from pos in Enum.GetValues<ShapePosition>()
        select new ShapeSpec(kind, colour, size, pos);

    [Fact]
    public void Reads_every_single_shape_image_of_the_data_set_right()
    {
        int n = 0;
        foreach (var spec in AllSingleShapes())
        {
            var found = ShapesChecker.Detect(ShapesDataset.Render([spec]).Data);
            Assert.True(ShapesChecker.Matches(found, [spec], checkLayout: true),
                $"{spec.Phrase}: read as {string.Join("; ", found.Select(f => $"{f.Size} {f.Colour} {f.Kind} at {f.Position} (fill {f.Fill:F2}, {f.Width}x{f.Height})"))}");
            n++;
        }
        Assert.Equal(216, n);
    }

    [Fact]
    public void Reads_two_shape_images_and_the_text_data_set()
    {
        using var data = ShapesDataset.Generate(300, 7, text: true);
        var scenes = ShapesDataset.GenerateScenes(300, 7, text: true);
        using var images = data.GetBatch(Enumerable.Range(0, 300).Select(i => (long)i).ToArray()).Images;
        var report = ShapesChecker.Check(images, scenes, checkLayout: true);
        Assert.Equal(300, report.Correct);
        Assert.Contains(scenes, s => s.Length == 2);
    }

    [Fact]
    public void Rejects_wrong_colour_kind_extra_shapes_noise_and_blank_images()
    {
        var asked = new ShapeSpec(ShapeKind.Circle, ShapeColour.Red, ShapeSize.Large, ShapePosition.Center);
        Assert.False(ShapesChecker.Matches(ShapesChecker.Detect(ShapesDataset.Render([asked with { Colour = ShapeColour.Blue }]).Data), [asked], false));
        Assert.False(ShapesChecker.Matches(ShapesChecker.Detect(ShapesDataset.Render([asked with { Kind = ShapeKind.Square }]).Data), [asked], false));
        Assert.False(ShapesChecker.Matches(ShapesChecker.Detect(ShapesDataset.Render([asked with { Position = ShapePosition.Top }]).Data), [asked], true));
        Assert.False(ShapesChecker.Matches(ShapesChecker.Detect(ShapesDataset.Render([asked with { Size = ShapeSize.Small }]).Data), [asked], true));
        var extra = asked with { Colour = ShapeColour.Green, Position = ShapePosition.TopLeft, Size = ShapeSize.Small };
        Assert.False(ShapesChecker.Matches(ShapesChecker.Detect(ShapesDataset.Render([asked, extra]).Data), [asked], false));
        Assert.Empty(ShapesChecker.Detect(ShapesDataset.Render([]).Data));

        // Scattered coloured blocks (what an undertrained model draws) are not a circle.
        var blocks = ShapesDataset.Render([]).Data;
        var rng = new Random(3);
        for (int k = 0; k < 12; k++)
        {
            int bx = rng.Next(8) * 4, by = rng.Next(8) * 4;
            for (int y = by; y < by + 4; y++) for (int x = bx; x < bx + 4; x++) { int o = (y * 32 + x) * 3; blocks[o] = 220; blocks[o + 1] = 40; blocks[o + 2] = 40; }
        }
        Assert.False(ShapesChecker.Matches(ShapesChecker.Detect(blocks), [asked], false));
    }

    [Fact]
    public void Tolerates_mild_pixel_noise()
    {
        var spec = new ShapeSpec(ShapeKind.Triangle, ShapeColour.Yellow, ShapeSize.Small, ShapePosition.BottomRight);
        var px = ShapesDataset.Render([spec]).Data;
        var rng = new Random(1);
        for (int i = 0; i < px.Length; i++) px[i] = (byte)Math.Clamp(px[i] + rng.Next(-25, 26), 0, 255);
        Assert.True(ShapesChecker.Matches(ShapesChecker.Detect(px), [spec], checkLayout: true));
    }
}
