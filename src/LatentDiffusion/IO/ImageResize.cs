namespace LatentDiffusion.IO;

/// <summary>
/// Center crop and resize of 8-bit images. The resize follows PIL's <c>Image.resize</c>: a separable convolution
/// whose filter support is widened by the scale factor when downscaling, so it antialiases (like torchvision's
/// Resize with antialias=True). Both passes run in float and the result is rounded once to bytes, so values can differ
/// from PIL (which rounds between its horizontal and vertical pass) by at most one level.
/// </summary>
public static class ImageResize
{
    /// <summary>
    /// Crops the largest centred square. Offsets are round((W − S) / 2) with round-half-to-even, as torchvision's
    /// CenterCrop computes them with Python's round.
    /// </summary>
    public static ImagePixels CenterCropSquare(ImagePixels image)
    {
        int s = Math.Min(image.Width, image.Height);
        if (image.Width == s && image.Height == s) return image;
        int left = (int)Math.Round((image.Width - s) / 2.0, MidpointRounding.ToEven);
        int top = (int)Math.Round((image.Height - s) / 2.0, MidpointRounding.ToEven);
        return Crop(image, left, top, s, s);
    }

    /// <summary>The rectangle [left, left + width) × [top, top + height), which must lie inside the image.</summary>
    public static ImagePixels Crop(ImagePixels image, int left, int top, int width, int height)
    {
        if (left < 0 || top < 0 || width <= 0 || height <= 0 || left + width > image.Width || top + height > image.Height)
            throw new ArgumentOutOfRangeException(nameof(left), $"crop {width}x{height} at ({left}, {top}) is outside the {image.Width}x{image.Height} image");
        int c = image.Channels;
        var dst = new byte[width * height * c];
        for (int y = 0; y < height; y++)
            Array.Copy(image.Data, ((top + y) * image.Width + left) * c, dst, y * width * c, width * c);
        return new ImagePixels(width, height, c, dst);
    }

    /// <summary>Resizes to width × height with the given filter (PIL semantics; see the class remarks).</summary>
    public static ImagePixels Resize(ImagePixels image, int width, int height, ResizeFilter filter)
    {
        if (width <= 0 || height <= 0) throw new ArgumentOutOfRangeException(nameof(width), $"target size must be positive, got {width}x{height}");
        if (width == image.Width && height == image.Height) return image;
        if (filter == ResizeFilter.Nearest) return ResizeNearest(image, width, height);

        int c = image.Channels;
        var src = new float[image.Data.Length];
        for (int i = 0; i < src.Length; i++) src[i] = image.Data[i];

        // Horizontal pass: (H, W_in, C) -> (H, W_out, C).
        var (hStart, hWeights, hCount) = Coefficients(image.Width, width, filter);
        var mid = new float[image.Height * width * c];
        for (int y = 0; y < image.Height; y++)
        {
            int rowIn = y * image.Width * c, rowOut = y * width * c;
            for (int x = 0; x < width; x++)
            {
                int start = hStart[x], n = hCount[x], wOff = x * hWeights.Stride;
                for (int ch = 0; ch < c; ch++)
                {
                    float sum = 0;
                    for (int k = 0; k < n; k++) sum += hWeights.W[wOff + k] * src[rowIn + (start + k) * c + ch];
                    mid[rowOut + x * c + ch] = sum;
                }
            }
        }

        // Vertical pass: (H_in, W_out, C) -> (H_out, W_out, C), rounded once to bytes.
        var (vStart, vWeights, vCount) = Coefficients(image.Height, height, filter);
        var dst = new byte[height * width * c];
        int rowLen = width * c;
        for (int y = 0; y < height; y++)
        {
            int start = vStart[y], n = vCount[y], wOff = y * vWeights.Stride;
            for (int i = 0; i < rowLen; i++)
            {
                float sum = 0;
                for (int k = 0; k < n; k++) sum += vWeights.W[wOff + k] * mid[(start + k) * rowLen + i];
                dst[y * rowLen + i] = (byte)Math.Clamp(MathF.Round(sum, MidpointRounding.AwayFromZero), 0f, 255f);
            }
        }
        return new ImagePixels(width, height, c, dst);
    }

    static ImagePixels ResizeNearest(ImagePixels image, int width, int height)
    {
        int c = image.Channels;
        var dst = new byte[width * height * c];
        double sx = (double)image.Width / width, sy = (double)image.Height / height;
        for (int y = 0; y < height; y++)
        {
            int yi = Math.Min((int)((y + 0.5) * sy), image.Height - 1);
            for (int x = 0; x < width; x++)
            {
                int xi = Math.Min((int)((x + 0.5) * sx), image.Width - 1);
                Array.Copy(image.Data, (yi * image.Width + xi) * c, dst, (y * width + x) * c, c);
            }
        }
        return new ImagePixels(width, height, c, dst);
    }

    readonly record struct WeightTable(float[] W, int Stride);

    /// <summary>
    /// For each output index: the first input index, the normalised weights and their count. The filter is evaluated at
    /// the input pixel centres relative to the output pixel's centre mapped into input space, scaled by 1 / max(scale, 1).
    /// </summary>
    static (int[] start, WeightTable weights, int[] count) Coefficients(int inSize, int outSize, ResizeFilter filter)
    {
        double scale = (double)inSize / outSize;
        double filterScale = Math.Max(scale, 1.0);
        double support = Support(filter) * filterScale;
        int stride = (int)Math.Ceiling(support) * 2 + 1;
        var start = new int[outSize];
        var count = new int[outSize];
        var w = new float[outSize * stride];
        var tmp = new double[stride];
        for (int o = 0; o < outSize; o++)
        {
            double center = (o + 0.5) * scale;
            int xmin = Math.Max((int)Math.Floor(center - support + 0.5), 0);
            int xmax = Math.Min((int)Math.Floor(center + support + 0.5), inSize);
            int n = Math.Min(xmax - xmin, stride);
            double total = 0;
            for (int k = 0; k < n; k++)
            {
                tmp[k] = Kernel(filter, (k + xmin - center + 0.5) / filterScale);
                total += tmp[k];
            }
            for (int k = 0; k < n; k++) w[o * stride + k] = (float)(total != 0 ? tmp[k] / total : tmp[k]);
            start[o] = xmin;
            count[o] = n;
        }
        return (start, new WeightTable(w, stride), count);
    }

    static double Support(ResizeFilter f) => f switch
    {
        ResizeFilter.Box => 0.5,
        ResizeFilter.Bilinear => 1.0,
        ResizeFilter.Bicubic => 2.0,
        ResizeFilter.Lanczos => 3.0,
        _ => throw new ArgumentOutOfRangeException(nameof(f)),
    };

    static double Kernel(ResizeFilter f, double x)
    {
        switch (f)
        {
            case ResizeFilter.Box:
                return x > -0.5 && x <= 0.5 ? 1.0 : 0.0;
            case ResizeFilter.Bilinear:
                x = Math.Abs(x);
                return x < 1.0 ? 1.0 - x : 0.0;
            case ResizeFilter.Bicubic:
            {
                const double a = -0.5;
                x = Math.Abs(x);
                if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
                if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
                return 0.0;
            }
            case ResizeFilter.Lanczos:
                return x > -3.0 && x < 3.0 ? Sinc(x) * Sinc(x / 3.0) : 0.0;
            default:
                throw new ArgumentOutOfRangeException(nameof(f));
        }
    }

    static double Sinc(double x)
    {
        if (x == 0.0) return 1.0;
        x *= Math.PI;
        return Math.Sin(x) / x;
    }
}
