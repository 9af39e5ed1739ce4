using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Layers;

/// <summary>Turning patch tokens back into images.</summary>
internal static class Patches
{
    /// <summary>
    /// (N, T, p·p·C) tokens → (N, C, H, W) image with H = W = √T·p; each token holds its patch as (p, p, C),
    /// i.e. DiT's reshape to (N, h, w, p, q, C) then einsum 'nhwpqc->nchpwq'.
    /// </summary>
    public static Tensor Unpatchify(Tensor x, int channels, int patch)
    {
        if (x.dim() != 3) throw new ArgumentException($"expected (N, T, p*p*C) tokens, got shape [{string.Join(",", x.shape)}]");
        long n = x.shape[0], tokens = x.shape[1];
        long side = (long)Math.Round(Math.Sqrt(tokens));
        if (side * side != tokens) throw new ArgumentException($"{tokens} tokens do not form a square grid");
        if (x.shape[2] != (long)patch * patch * channels)
            throw new ArgumentException($"token width {x.shape[2]} is not patch²·channels = {patch * patch * channels}");
        using var grid = x.reshape(n, side, side, patch, patch, channels);
        using var permuted = grid.permute(0, 5, 1, 3, 2, 4);   // n c h p w q
        return permuted.reshape(n, channels, side * patch, side * patch);
    }
}
