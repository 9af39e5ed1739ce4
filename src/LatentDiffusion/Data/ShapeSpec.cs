namespace LatentDiffusion.Data;

/// <summary>Shape of the built-in <c>shapes</c> data set, in class-id order.</summary>
public enum ShapeKind { Circle, Square, Triangle }

/// <summary>Colour of the built-in <c>shapes</c> data set, in class-id order.</summary>
public enum ShapeColour { Red, Green, Blue, Yellow }

/// <summary>Size of a shape: small is radius 4, large radius 7.</summary>
public enum ShapeSize { Small, Large }

/// <summary>Centre of a shape on the 3 × 3 grid x, y ∈ {8, 16, 24}, row by row from the top left.</summary>
public enum ShapePosition { TopLeft, Top, TopRight, Left, Center, Right, BottomLeft, Bottom, BottomRight }

/// <summary>
/// One shape of a <c>shapes</c> image, with its geometry and its caption phrase ("a large red circle at the top left").
/// Geometry is in continuous image coordinates where pixel column i spans [i, i + 1): (CenterX, CenterY) is a grid point.
/// </summary>
public readonly record struct ShapeSpec(ShapeKind Kind, ShapeColour Colour, ShapeSize Size, ShapePosition Position)
{
    /// <summary>Class id = shape index × 4 + colour index.</summary>
    public int ClassId => (int)Kind * 4 + (int)Colour;
    public int Radius => Size == ShapeSize.Small ? 4 : 7;
    public int CenterX => 8 + 8 * ((int)Position % 3);
    public int CenterY => 8 + 8 * ((int)Position / 3);

    /// <summary>The exact RGB of the colour.</summary>
    public (byte R, byte G, byte B) Rgb => ShapesDataset.ColourRgb(Colour);

    /// <summary>"a large red circle at the top left".</summary>
    public string Phrase =>
        $"a {ShapesDataset.SizeNames[(int)Size]} {ShapesDataset.ColourNames[(int)Colour]} {ShapesDataset.KindNames[(int)Kind]} at the {ShapesDataset.PositionNames[(int)Position]}";

    /// <summary>
    /// Whether pixel (x, y) belongs to the shape: its centre (x + 0.5, y + 0.5) lies inside the shape. With integer
    /// centres and radii no pixel centre falls on a boundary (half-integer offsets), so the rule has no ties.
    /// Circle: distance to the centre below r. Square: |dx| &lt; r and |dy| &lt; r (side 2r, 2r × 2r pixels).
    /// Triangle (cx, cy − r), (cx − r, cy + r), (cx + r, cy + r): above the base and between the two slanted edges
    /// (its apex row stays empty: those pixel centres lie outside the narrow tip).
    /// </summary>
    public bool Covers(int x, int y)
    {
        double dx = x + 0.5 - CenterX, dy = y + 0.5 - CenterY;
        int r = Radius;
        switch (Kind)
        {
            case ShapeKind.Circle:
                return dx * dx + dy * dy < r * r;
            case ShapeKind.Square:
                return Math.Abs(dx) < r && Math.Abs(dy) < r;
            case ShapeKind.Triangle:
                // Inside when dy < r (above the base) and |dx| < (dy + r) / 2 (between the edges from the apex
                // (0, −r) to (±r, r)); |dx| < (dy + r)/2 also implies dy > −r.
                return dy < r && Math.Abs(dx) < (dy + r) / 2.0;
            default:
                throw new ArgumentOutOfRangeException(nameof(Kind));
        }
    }
}
