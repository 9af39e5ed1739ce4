namespace LatentDiffusion.Data;

/// <summary>Shape of the built-in <c>shapes</c> data set, in class-id order.</summary>
public enum ShapeKind
{
    /// <summary>A disc of radius r.</summary>
    Circle,
    /// <summary>An axis-aligned square of side 2r.</summary>
    Square,
    /// <summary>An upright isosceles triangle, base 2r and height 2r.</summary>
    Triangle,
}

/// <summary>Colour of the built-in <c>shapes</c> data set, in class-id order.</summary>
public enum ShapeColour
{
    /// <summary>RGB (220, 40, 40).</summary>
    Red,
    /// <summary>RGB (40, 170, 60).</summary>
    Green,
    /// <summary>RGB (40, 80, 220).</summary>
    Blue,
    /// <summary>RGB (230, 200, 40).</summary>
    Yellow,
}

/// <summary>Size of a shape: small is radius 4, large radius 7.</summary>
public enum ShapeSize
{
    /// <summary>Radius 4.</summary>
    Small,
    /// <summary>Radius 7.</summary>
    Large,
}

/// <summary>Centre of a shape on the 3 × 3 grid x, y ∈ {8, 16, 24}, row by row from the top left.</summary>
public enum ShapePosition
{
    /// <summary>Centre (8, 8).</summary>
    TopLeft,
    /// <summary>Centre (16, 8).</summary>
    Top,
    /// <summary>Centre (24, 8).</summary>
    TopRight,
    /// <summary>Centre (8, 16).</summary>
    Left,
    /// <summary>Centre (16, 16).</summary>
    Center,
    /// <summary>Centre (24, 16).</summary>
    Right,
    /// <summary>Centre (8, 24).</summary>
    BottomLeft,
    /// <summary>Centre (16, 24).</summary>
    Bottom,
    /// <summary>Centre (24, 24).</summary>
    BottomRight,
}

/// <summary>
/// One shape of a <c>shapes</c> image, with its geometry and its caption phrase ("a large red circle at the top left").
/// Geometry is in continuous image coordinates where pixel column i spans [i, i + 1): (CenterX, CenterY) is a grid point.
/// </summary>
/// <param name="Kind">Circle, square or triangle.</param>
/// <param name="Colour">One of the four exact colours.</param>
/// <param name="Size">Small (r = 4) or large (r = 7).</param>
/// <param name="Position">Where on the 3 × 3 grid the centre lies.</param>
public readonly record struct ShapeSpec(ShapeKind Kind, ShapeColour Colour, ShapeSize Size, ShapePosition Position)
{
    /// <summary>Class id = shape index × 4 + colour index.</summary>
    public int ClassId => (int)Kind * 4 + (int)Colour;
    /// <summary>r in pixels: 4 or 7.</summary>
    public int Radius => Size == ShapeSize.Small ? 4 : 7;
    /// <summary>x of the centre: 8, 16 or 24.</summary>
    public int CenterX => 8 + 8 * ((int)Position % 3);
    /// <summary>y of the centre (down from the top): 8, 16 or 24.</summary>
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
