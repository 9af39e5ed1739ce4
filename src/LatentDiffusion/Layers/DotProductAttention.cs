using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Layers;

/// <summary>
/// softmax(q kᵀ / √d) v for (N, H, L, d) queries and (N, H, S, d) keys and values, with an optional boolean mask
/// broadcastable to (N, H, L, S) (true = may be attended), as <c>scaled_dot_product_attention</c> computes it.
/// </summary>
/// <remarks>
/// In bf16 on the CPU the products are written out instead of calling libtorch's fused kernel, which for DiT-S/2's
/// shapes (6 heads of 64, 258 tokens) took 1.3–1.5× as long forward and backward (AVX-512 BF16 EPYC, libtorch 2.10;
/// docs/performance.md). The scores q kᵀ and their softmax are computed in float32, as the fused kernel accumulates
/// them, so the result is as close to float64 as the fused kernel's; rounding the scores to bf16 would be faster still
/// (2–3×) but 1.5× further off. The attention weights (L × S per head) are kept for the backward pass, which the fused
/// kernel avoids: 6 × 258² values per image and block. float32 keeps the fused kernel.
/// </remarks>
internal static class DotProductAttention
{
    public static Tensor Compute(Tensor q, Tensor k, Tensor v, Tensor? mask = null)
    {
        if (!(q.dtype == ScalarType.BFloat16 && q.device.type == DeviceType.CPU))
            return nn.functional.scaled_dot_product_attention(q, k, v, mask);
        using var scope = NewDisposeScope();
        // Scaling q (L·d values) is cheaper than scaling the scores (L·S).
        var q32 = q.to(ScalarType.Float32) * (1.0 / Math.Sqrt(q.shape[^1]));
        var scores = q32.matmul(k.to(ScalarType.Float32).transpose(-2, -1));
        if (mask is not null) scores = scores.masked_fill(mask.logical_not(), double.NegativeInfinity);
        return scores.softmax(-1).to(v.dtype).matmul(v).MoveToOuterDisposeScope();
    }
}
