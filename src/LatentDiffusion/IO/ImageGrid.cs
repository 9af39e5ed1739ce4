using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.IO;

/// <summary>
/// A grid of images, laid out as torchvision's make_grid: <c>columns</c> per row, rows = ceil(N / columns),
/// <c>padding</c> pixels around every cell (so the grid is columns·(W + p) + p wide), padding filled with
/// <c>padValue</c> (default −1, black, as make_grid's pad_value 0 on [0, 1] images).
/// </summary>
public static class ImageGrid
{
    /// <summary>Arranges (N, C, H, W) images in [-1, 1] into one (C, H', W') image.</summary>
    public static Tensor Make(Tensor images, int columns, int padding = 2, float padValue = -1f)
    {
        if (images.dim() != 4 || images.shape[1] is not (1 or 3))
            throw new LdmException($"an image grid needs images of shape (N, C, H, W) with C = 1 or 3, got ({string.Join(", ", images.shape)}).");
        long n = images.shape[0];
        if (n == 0) throw new LdmException("an image grid needs at least one image.");
        if (columns <= 0) throw new LdmException($"grid columns must be positive, got {columns}.");
        if (padding < 0) throw new LdmException($"grid padding must be zero or positive, got {padding}.");
        long cols = Math.Min(columns, n);
        long rows = (n + cols - 1) / cols;
        long c = images.shape[1], h = images.shape[2], w = images.shape[3];
        using var scope = torch.NewDisposeScope();
        var src = images.detach().to(torch.CPU).to(ScalarType.Float32);
        var grid = torch.full(new long[] { c, rows * (h + padding) + padding, cols * (w + padding) + padding }, padValue, ScalarType.Float32, torch.CPU);
        for (long i = 0; i < n; i++)
        {
            long r = i / cols, k = i % cols;
            long top = r * (h + padding) + padding, left = k * (w + padding) + padding;
            grid[TensorIndex.Colon, TensorIndex.Slice(top, top + h), TensorIndex.Slice(left, left + w)] = src[i];
        }
        return grid.MoveToOuterDisposeScope();
    }

    /// <summary>Writes (N, C, H, W) images in [-1, 1] as one grid PNG, atomically.</summary>
    public static void Save(string path, Tensor images, int columns, int padding = 2, float padValue = -1f)
    {
        using var grid = Make(images, columns, padding, padValue);
        ImageFile.Write(path, grid);
    }
}
