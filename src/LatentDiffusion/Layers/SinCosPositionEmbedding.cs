using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Layers;

/// <summary>
/// The fixed 2-D sine-cosine position embedding of MAE and DiT (get_2d_sincos_pos_embed), in float64.
/// </summary>
internal static class SinCosPositionEmbedding
{
    /// <summary>
    /// (gridSize², embedDim) float64; row h·G + w is the token at row h, column w. The first embedDim/2 columns
    /// encode the COLUMN index w and the last embedDim/2 the row index h (the reference code's meshgrid puts w first,
    /// and pretrained DiT weights depend on this order). Each half is [sin(pos·ω) | cos(pos·ω)],
    /// ω_k = 10000^(−k/(embedDim/4)), k &lt; embedDim/4. On <paramref name="device"/> (null = cpu).
    /// </summary>
    public static Tensor Get2D(int embedDim, int gridSize, Device? device = null)
    {
        if (embedDim <= 0 || embedDim % 4 != 0)
            throw new ArgumentException($"the 2-D sin-cos embedding needs a positive width divisible by 4, got {embedDim}", nameof(embedDim));
        if (gridSize <= 0) throw new ArgumentException($"grid size must be positive, got {gridSize}", nameof(gridSize));
        int quarter = embedDim / 4, halfDim = embedDim / 2;
        var omega = new double[quarter];
        for (int k = 0; k < quarter; k++) omega[k] = 1.0 / Math.Pow(10000.0, k / (double)quarter);

        var table = new double[gridSize * gridSize * embedDim];
        for (int h = 0; h < gridSize; h++)
            for (int w = 0; w < gridSize; w++)
            {
                int row = (h * gridSize + w) * embedDim;
                Fill1D(table, row, w, omega);             // first half: column index
                Fill1D(table, row + halfDim, h, omega);   // second half: row index
            }
        return torch.tensor(table, new long[] { gridSize * gridSize, embedDim }, ScalarType.Float64, device ?? torch.CPU);
    }

    static void Fill1D(double[] table, int offset, int position, double[] omega)
    {
        int quarter = omega.Length;
        for (int k = 0; k < quarter; k++)
        {
            double angle = position * omega[k];
            table[offset + k] = Math.Sin(angle);
            table[offset + quarter + k] = Math.Cos(angle);
        }
    }
}
