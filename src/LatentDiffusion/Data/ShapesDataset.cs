using System.Text.RegularExpressions;
using LatentDiffusion.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Data;

/// <summary>
/// The built-in <c>shapes</c> data set (DESIGN.md): 32 × 32 RGB on white, a circle, square or triangle in one of four
/// exact colours, small (r = 4) or large (r = 7), centred on a 3 × 3 grid at {8, 16, 24}. Deterministic from a seed
/// (System.Random, whose seeded sequence is fixed across .NET versions), drawn without antialiasing so every shape
/// pixel has the exact colour (the rule is <see cref="ShapeSpec.Covers"/>).
/// <para>Class form: one shape per image, label = class id = shape × 4 + colour, caption = its phrase.</para>
/// <para>Text form: one or two shapes (½ each). A second shape's centre differs from the first's by 16 px in x or in y
/// (or both, as "top left and bottom right"), so shapes never overlap; the centre position therefore never takes a
/// second shape. Label = class id for one shape, −1 for two; caption "A and B".</para>
/// </summary>
public static partial class ShapesDataset
{
    /// <summary>Side of the square images in pixels.</summary>
    public const int ImageSize = 32;
    /// <summary>Number of classes: 3 shapes × 4 colours.</summary>
    public const int NumClasses = 12;

    internal static readonly string[] KindNames = ["circle", "square", "triangle"];
    internal static readonly string[] ColourNames = ["red", "green", "blue", "yellow"];
    internal static readonly string[] SizeNames = ["small", "large"];
    internal static readonly string[] PositionNames =
        ["top left", "top", "top right", "left", "center", "right", "bottom left", "bottom", "bottom right"];

    /// <summary>The background, white.</summary>
    public static readonly (byte R, byte G, byte B) Background = (255, 255, 255);

    /// <summary>The 12 class names by class id: "red circle", "green circle", ..., "yellow triangle".</summary>
    public static readonly IReadOnlyList<string> ClassNames =
        Enumerable.Range(0, NumClasses).Select(id => $"{ColourNames[id % 4]} {KindNames[id / 4]}").ToArray();

    /// <summary>The exact RGB of a colour.</summary>
    public static (byte R, byte G, byte B) ColourRgb(ShapeColour c) => c switch
    {
        ShapeColour.Red => (220, 40, 40),
        ShapeColour.Green => (40, 170, 60),
        ShapeColour.Blue => (40, 80, 220),
        ShapeColour.Yellow => (230, 200, 40),
        _ => throw new ArgumentOutOfRangeException(nameof(c)),
    };

    /// <summary>The shape and colour of a class id (0..11).</summary>
    public static (ShapeKind Kind, ShapeColour Colour) ClassAttributes(int classId)
    {
        if (classId is < 0 or >= NumClasses)
            throw new LdmException($"shapes class id {classId} is out of range; use 0..{NumClasses - 1}.");
        return ((ShapeKind)(classId / 4), (ShapeColour)(classId % 4));
    }

    /// <summary>Whether two positions may hold the two shapes of one image: 16 px apart in x or in y.</summary>
    public static bool CanPair(ShapePosition a, ShapePosition b)
    {
        var sa = new ShapeSpec(default, default, default, a);
        var sb = new ShapeSpec(default, default, default, b);
        return Math.Abs(sa.CenterX - sb.CenterX) == 16 || Math.Abs(sa.CenterY - sb.CenterY) == 16;
    }

    /// <summary>Bytes one generated image takes while <see cref="Generate"/> runs: its pixels twice (the array and
    /// the tensor made from it) plus its scene and caption.</summary>
    const long BytesPerImage = 2 * 3 * ImageSize * ImageSize + 256;

    /// <summary>
    /// Refuses, before anything is drawn, a count whose images cannot be held in the memory available now (an
    /// <see cref="LdmOptionException"/> on <c>ShapesDataset.Count</c>); shapes:count=2000000000 used to fill gigabytes first.
    /// </summary>
    public static void CheckFitsInMemory(long count)
    {
        long available = Diagnostics.ProcessMemory.AvailableBytes();
        if (count * BytesPerImage <= available) return;
        throw new LdmOptionException(nameof(ShapesDataset), "Count", count,
            $"be at most {available / BytesPerImage} here ({count} images need {count * BytesPerImage / 1e9:F0} GB in memory, {available / 1e9:F1} GB is available)",
            "use fewer images");
    }

    /// <summary>Percent of text-form images with two shapes unless told otherwise.</summary>
    public const int DefaultTwoShapePercent = 50;

    /// <summary>The shapes of <paramref name="count"/> images, deterministic from <paramref name="seed"/>; in the text
    /// form <paramref name="twoShapePercent"/> percent of them (on average) hold two shapes.</summary>
    public static ShapeSpec[][] GenerateScenes(int count, int seed, bool text, int twoShapePercent = DefaultTwoShapePercent)
    {
        if (count < 0) throw new LdmException($"shapes count must be zero or positive, got {count}.");
        if (twoShapePercent is < 0 or > 100) throw new LdmOptionException(nameof(ShapesDataset), "TwoShapePercent", twoShapePercent, "be 0 to 100");
        var rng = new Random(seed);
        var scenes = new ShapeSpec[count][];
        var positions = Enum.GetValues<ShapePosition>();
        for (int i = 0; i < count; i++)
        {
            // The default keeps the draws of the data sets (and shipped models) made before the share was a setting.
            bool two = text && (twoShapePercent == DefaultTwoShapePercent ? rng.Next(2) == 1 : rng.Next(100) < twoShapePercent);
            if (!two)
            {
                scenes[i] = [RandomShape(rng, (ShapePosition)rng.Next(9))];
                continue;
            }
            var firstChoices = positions.Where(p => positions.Any(q => CanPair(p, q))).ToArray();
            var p1 = firstChoices[rng.Next(firstChoices.Length)];
            var partners = positions.Where(q => CanPair(p1, q)).ToArray();
            var p2 = partners[rng.Next(partners.Length)];
            scenes[i] = [RandomShape(rng, p1), RandomShape(rng, p2)];
        }
        return scenes;
    }

    static ShapeSpec RandomShape(Random rng, ShapePosition position) =>
        new((ShapeKind)rng.Next(3), (ShapeColour)rng.Next(4), (ShapeSize)rng.Next(2), position);

    /// <summary>
    /// <paramref name="count"/> images as an <see cref="ImageDataset"/> (uint8 (N, 3, 32, 32), labels, captions,
    /// <see cref="ClassNames"/>), deterministic from <paramref name="seed"/>.
    /// </summary>
    public static ImageDataset Generate(int count, int seed, bool text, int twoShapePercent = DefaultTwoShapePercent)
    {
        CheckFitsInMemory(count);
        var scenes = GenerateScenes(count, seed, text, twoShapePercent);
        const int plane = ImageSize * ImageSize;
        var chw = new byte[(long)count * 3 * plane];
        for (int i = 0; i < count; i++)
        {
            var px = Render(scenes[i]);
            for (int p = 0; p < plane; p++)
                for (int c = 0; c < 3; c++)
                    chw[((long)i * 3 + c) * plane + p] = px.Data[p * 3 + c];
        }
        var labels = scenes.Select(s => s.Length == 1 ? (long)s[0].ClassId : -1L).ToArray();
        var captions = scenes.Select(s => (string?)Caption(s)).ToArray();
        return new ImageDataset(
            torch.tensor(chw, new long[] { count, 3, ImageSize, ImageSize }, dtype: ScalarType.Byte, device: torch.CPU),
            torch.tensor(labels, ScalarType.Int64, device: torch.CPU), captions, ClassNames,
            $"shapes({(text ? "text" : "class")}, seed={seed}{(text && twoShapePercent != DefaultTwoShapePercent ? $", two={twoShapePercent}%" : "")})");
    }

    /// <summary>Draws shapes on a white 32 × 32 RGB image (later shapes over earlier ones, though they never overlap).</summary>
    public static ImagePixels Render(IReadOnlyList<ShapeSpec> shapes)
    {
        var data = new byte[ImageSize * ImageSize * 3];
        Array.Fill(data, (byte)255);
        foreach (var s in shapes)
        {
            var (r, g, b) = s.Rgb;
            int rad = s.Radius;
            for (int y = Math.Max(0, s.CenterY - rad); y < Math.Min(ImageSize, s.CenterY + rad); y++)
                for (int x = Math.Max(0, s.CenterX - rad); x < Math.Min(ImageSize, s.CenterX + rad); x++)
                {
                    if (!s.Covers(x, y)) continue;
                    int o = (y * ImageSize + x) * 3;
                    data[o] = r; data[o + 1] = g; data[o + 2] = b;
                }
        }
        return new ImagePixels(ImageSize, ImageSize, 3, data);
    }

    /// <summary>"a large red circle at the top left", or two phrases joined by " and ".</summary>
    public static string Caption(IReadOnlyList<ShapeSpec> shapes) => string.Join(" and ", shapes.Select(s => s.Phrase));

    [GeneratedRegex("^a (small|large) (red|green|blue|yellow) (circle|square|triangle) at the (top left|top right|bottom left|bottom right|top|bottom|left|right|center)$")]
    private static partial Regex PhraseRegex();

    /// <summary>Parses a caption made by <see cref="Caption"/> back into its shapes; null when it does not match.</summary>
    public static ShapeSpec[]? TryDescribe(string caption)
    {
        var parts = caption.Trim().Split(" and ");
        if (parts.Length is < 1 or > 2) return null;
        var specs = new ShapeSpec[parts.Length];
        for (int i = 0; i < parts.Length; i++)
        {
            var m = PhraseRegex().Match(parts[i]);
            if (!m.Success) return null;
            specs[i] = new ShapeSpec(
                (ShapeKind)Array.IndexOf(KindNames, m.Groups[3].Value),
                (ShapeColour)Array.IndexOf(ColourNames, m.Groups[2].Value),
                (ShapeSize)Array.IndexOf(SizeNames, m.Groups[1].Value),
                (ShapePosition)Array.IndexOf(PositionNames, m.Groups[4].Value));
        }
        return specs;
    }

    /// <summary>Parses a shapes caption into its shapes; <see cref="LdmException"/> when it is not one.</summary>
    public static ShapeSpec[] Describe(string caption) =>
        TryDescribe(caption) ?? throw new LdmException(
            $"'{caption}' is not a shapes caption; write e.g. 'a large red circle at the top left' or two such phrases joined by ' and '.");
}
