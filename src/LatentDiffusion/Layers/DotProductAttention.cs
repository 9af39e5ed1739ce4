using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Layers;

/// <summary>
/// softmax(q kᵀ / √d) v for (N, H, L, d) queries and (N, H, S, d) keys and values, with an optional boolean mask
/// broadcastable to (N, H, L, S) (true = may be attended), as <c>scaled_dot_product_attention</c> computes it.
/// </summary>
/// <remarks>
/// In bf16 on the CPU the two products are written out instead of calling libtorch's fused kernel: for DiT-S/2's shapes
/// (6 heads of 64, 258 tokens) the fused kernel's forward and backward took 2.5–5× as long as two batched bf16 products
/// and a softmax (AVX-512 BF16 EPYC, libtorch 2.10; docs/performance.md), because its blocked loops do not reach the
/// bf16 product kernels. It stores the (L, S) attention weights for the backward pass, which the fused kernel avoids:
/// 6 × 258² bf16 values per image and block (0.8 MB). float32 keeps the fused kernel, whose speed is the products' own.
/// </remarks>
internal static class DotProductAttention
{
    public static Tensor Compute(Tensor q, Tensor k, Tensor v, Tensor? mask = null)
    {
        if (!(q.dtype == ScalarType.BFloat16 && q.device.type == DeviceType.CPU))
            return nn.functional.scaled_dot_product_attention(q, k, v, mask);
        using var scope = NewDisposeScope();
        // Scaling q (L·d values) is cheaper than scaling the scores (L·S).
        var scores = (q * (1.0 / Math.Sqrt(q.shape[^1]))).matmul(k.transpose(-2, -1));
        if (mask is not null) scores = scores.masked_fill(mask.logical_not(), double.NegativeInfinity);
        return scores.softmax(-1).matmul(v).MoveToOuterDisposeScope();
    }
}
