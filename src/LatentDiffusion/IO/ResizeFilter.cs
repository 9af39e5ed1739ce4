namespace LatentDiffusion.IO;

/// <summary>
/// Resampling filters for <see cref="ImageResize"/>, with PIL's definitions and support widths.
/// The resize is our own separable convolution (PIL's algorithm), not a SkiaSharp sampling: SkiaSharp's
/// <c>SKSamplingOptions</c> (Nearest / Linear / Mitchell / CatmullRom cubic, mipmaps) samples the source at one point per
/// output pixel, so a large downscale aliases; PIL (and torchvision's Resize with antialias=True) widen the filter by the
/// scale factor instead, which is what we do. The nearest SkiaSharp counterparts, for reference:
/// Nearest ≈ SKFilterMode.Nearest, Bilinear ≈ SKFilterMode.Linear, Bicubic ≈ SKCubicResampler.CatmullRom (a = −0.5),
/// Lanczos and Box have none (Box ≈ SKMipmapMode.Linear area averaging on exact power-of-two downscales).
/// </summary>
public enum ResizeFilter
{
    /// <summary>Nearest neighbour: the source pixel under the output pixel's centre (PIL NEAREST).</summary>
    Nearest,
    /// <summary>Triangle filter, support 1 (PIL BILINEAR).</summary>
    Bilinear,
    /// <summary>Keys cubic with a = −0.5, support 2 (PIL BICUBIC, torchvision's default for PIL images in LDM).</summary>
    Bicubic,
    /// <summary>Lanczos windowed sinc, support 3 (PIL LANCZOS).</summary>
    Lanczos,
    /// <summary>Box filter, support 0.5: area average when downscaling (PIL BOX).</summary>
    Box,
}
