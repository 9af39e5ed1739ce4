using LatentDiffusion.Data;
using static TorchSharp.torch;

namespace LatentDiffusion.Evaluation;

/// <summary>A shape found in a generated <c>shapes</c> image: its attributes as read from the pixels, and the evidence.</summary>
/// <param name="Kind">Square, disc or triangle, from the fill ratio.</param>
/// <param name="Colour">The nearest palette colour.</param>
/// <param name="Size">Small or large, from the bounding box.</param>
/// <param name="Position">Grid cell of the region's centre.</param>
/// <param name="Pixels">Pixels in the region.</param>
/// <param name="Fill">Pixels / bounding-box area.</param>
/// <param name="Width">Bounding-box width in pixels.</param>
/// <param name="Height">Bounding-box height in pixels.</param>
public sealed record DetectedShape(ShapeKind Kind, ShapeColour Colour, ShapeSize Size, ShapePosition Position, int Pixels, double Fill, int Width, int Height);

/// <summary>How well generated images show what was asked (one entry per image).</summary>
/// <param name="Images">Images checked.</param>
/// <param name="Correct">Images showing exactly the asked shapes with every checked attribute right.</param>
/// <param name="KindAndColourCorrect">Images whose shapes have the asked kinds and colours.</param>
/// <param name="PerImage">Whether each image was correct.</param>
/// <param name="Found">The shapes found in each image.</param>
public sealed record ShapesCheckReport(int Images, int Correct, int KindAndColourCorrect, IReadOnlyList<bool> PerImage, IReadOnlyList<IReadOnlyList<DetectedShape>> Found)
{
    /// <summary>Fraction of images that show exactly the asked shapes, with every checked attribute right.</summary>
    public double Accuracy => Images == 0 ? 0 : (double)Correct / Images;
    /// <summary>Fraction of images whose shapes have the asked kinds and colours (size and position not checked).</summary>
    public double KindAndColourAccuracy => Images == 0 ? 0 : (double)KindAndColourCorrect / Images;
}

/// <summary>
/// Reads generated 32 × 32 images of the built-in <c>shapes</c> data set back into shapes, from the pixels alone:
/// every pixel takes the nearest of the four palette colours and white; connected regions of one colour of at least
/// <see cref="MinPixels"/> pixels are shapes; a region's fill ratio (pixels / bounding box) tells the kind (square 1,
/// disc about 0.8, triangle about 0.5), its bounding box the size (side 8 or 14) and its centre the grid position.
/// On the data set's own images every attribute is read right (a test checks all 216 single-shape images).
/// </summary>
public static class ShapesChecker
{
    /// <summary>Smaller same-coloured regions are specks, not shapes (a small triangle has about 35 pixels).</summary>
    public const int MinPixels = 10;

    static readonly (ShapeColour colour, (int r, int g, int b) rgb)[] Palette =
        Enum.GetValues<ShapeColour>().Select(c => { var (r, g, b) = ShapesDataset.ColourRgb(c); return (c, ((int)r, (int)g, (int)b)); }).ToArray();

    /// <summary>The shapes in one RGB image given as bytes in (H, W, 3) order, largest first.</summary>
    public static List<DetectedShape> Detect(byte[] hwc, int size = ShapesDataset.ImageSize)
    {
        if (hwc.Length != size * size * 3) throw new ArgumentException($"expected {size}x{size}x3 bytes, got {hwc.Length}");
        var colourOf = new int[size * size];   // −1 = background, else palette index
        for (int p = 0; p < size * size; p++)
        {
            int r = hwc[3 * p], g = hwc[3 * p + 1], b = hwc[3 * p + 2];
            int best = -1;
            double bestD = Dist(r, g, b, 255, 255, 255);
            for (int k = 0; k < Palette.Length; k++)
            {
                var (pr, pg, pb) = Palette[k].rgb;
                double d = Dist(r, g, b, pr, pg, pb);
                if (d < bestD) { bestD = d; best = k; }
            }
            colourOf[p] = best;
        }
        var seen = new bool[size * size];
        var shapes = new List<DetectedShape>();
        var stack = new Stack<int>();
        for (int start = 0; start < size * size; start++)
        {
            if (seen[start] || colourOf[start] < 0) continue;
            int colour = colourOf[start];
            int count = 0, minX = size, minY = size, maxX = -1, maxY = -1;
            stack.Push(start);
            seen[start] = true;
            while (stack.Count > 0)
            {
                int p = stack.Pop();
                int x = p % size, y = p / size;
                count++;
                minX = Math.Min(minX, x); maxX = Math.Max(maxX, x); minY = Math.Min(minY, y); maxY = Math.Max(maxY, y);
                for (int dy = -1; dy <= 1; dy++)
                    for (int dx = -1; dx <= 1; dx++)
                    {
                        int nx = x + dx, ny = y + dy;
                        if (nx < 0 || ny < 0 || nx >= size || ny >= size) continue;
                        int q = ny * size + nx;
                        if (seen[q] || colourOf[q] != colour) continue;
                        seen[q] = true;
                        stack.Push(q);
                    }
            }
            if (count < MinPixels) continue;
            int w = maxX - minX + 1, h = maxY - minY + 1;
            double fill = (double)count / (w * h);
            var kind = fill >= 0.9 ? ShapeKind.Square : fill >= 0.66 ? ShapeKind.Circle : ShapeKind.Triangle;
            var shapeSize = Math.Max(w, h) <= 11 ? ShapeSize.Small : ShapeSize.Large;
            // A shape of radius r centred on the grid point c covers pixels c − r … c + r − 1: box centre c − 0.5.
            double cx = (minX + maxX + 1) / 2.0, cy = (minY + maxY + 1) / 2.0;
            int col = Nearest(cx), row = Nearest(cy);
            shapes.Add(new DetectedShape(kind, Palette[colour].colour, shapeSize, (ShapePosition)(row * 3 + col), count, fill, w, h));
        }
        return shapes.OrderByDescending(s => s.Pixels).ToList();
    }

    static int Nearest(double c) => Math.Clamp((int)Math.Round((c - 8) / 8.0), 0, 2);

    static double Dist(int r, int g, int b, int r2, int g2, int b2) =>
        (r - r2) * (r - r2) + (g - g2) * (g - g2) + (b - b2) * (b - b2);

    /// <summary>
    /// Whether <paramref name="found"/> is exactly <paramref name="asked"/> (as many shapes, matched one to one):
    /// kind and colour always, size and position when <paramref name="checkLayout"/>.
    /// </summary>
    public static bool Matches(IReadOnlyList<DetectedShape> found, IReadOnlyList<ShapeSpec> asked, bool checkLayout)
    {
        if (found.Count != asked.Count) return false;
        var remaining = found.ToList();
        foreach (var a in asked)
        {
            int i = remaining.FindIndex(f => f.Kind == a.Kind && f.Colour == a.Colour && (!checkLayout || (f.Size == a.Size && f.Position == a.Position)));
            if (i < 0) return false;
            remaining.RemoveAt(i);
        }
        return true;
    }

    /// <summary>Whether <paramref name="found"/> holds a shape that is <paramref name="asked"/> (kind and colour, and size
    /// and position when <paramref name="checkLayout"/>), whatever else the image shows: which of two asked shapes was drawn.</summary>
    public static bool Contains(IReadOnlyList<DetectedShape> found, ShapeSpec asked, bool checkLayout) =>
        found.Any(f => f.Kind == asked.Kind && f.Colour == asked.Colour && (!checkLayout || (f.Size == asked.Size && f.Position == asked.Position)));

    /// <summary>Checks images (N, 3, 32, 32) in [−1, 1] against what each should show.</summary>
    public static ShapesCheckReport Check(Tensor images, IReadOnlyList<ShapeSpec[]> asked, bool checkLayout)
    {
        if (images.dim() != 4 || images.shape[1] != 3 || images.shape[2] != ShapesDataset.ImageSize || images.shape[3] != ShapesDataset.ImageSize)
            throw new LdmException($"the shapes checker reads (N, 3, 32, 32) RGB images, got [{string.Join(",", images.shape)}]; decode latent samples first.");
        if (images.shape[0] != asked.Count)
            throw new LdmException($"{images.shape[0]} images for {asked.Count} descriptions; pass one description per image.");
        using var bytes = ((images.to(ScalarType.Float32).clamp(-1, 1) + 1) * 127.5).round().to(ScalarType.Byte).permute(0, 2, 3, 1).contiguous().cpu();
        var all = bytes.data<byte>().ToArray();
        int per = ShapesDataset.ImageSize * ShapesDataset.ImageSize * 3;
        var ok = new List<bool>();
        var found = new List<IReadOnlyList<DetectedShape>>();
        int correct = 0, kindColour = 0;
        for (int i = 0; i < asked.Count; i++)
        {
            var shapes = Detect(all[(i * per)..((i + 1) * per)]);
            bool right = Matches(shapes, asked[i], checkLayout);
            if (right) correct++;
            if (Matches(shapes, asked[i], checkLayout: false)) kindColour++;
            ok.Add(right);
            found.Add(shapes);
        }
        return new ShapesCheckReport(asked.Count, correct, kindColour, ok, found);
    }

    /// <summary>What a class id of the class-conditional shapes set asks for: its kind and colour (any size, any place).</summary>
    public static ShapeSpec[] ForClass(int classId)
    {
        var (kind, colour) = ShapesDataset.ClassAttributes(classId);
        return [new ShapeSpec(kind, colour, ShapeSize.Small, ShapePosition.Center)];
    }
}
