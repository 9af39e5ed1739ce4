namespace LatentDiffusion.Diffusion;

/// <summary>
/// Adds up the parameters and forward FLOPs of a network layer by layer, for a backbone's cost counter that walks its
/// architecture as the constructor builds it. Follows <see cref="ModelCost"/>'s convention: 2 FLOPs per multiply-add,
/// matrix products, convolutions and attention products only.
/// </summary>
internal sealed class CostTally
{
    long _parameters;
    double _flops, _attentionFlops;

    /// <summary>A Linear <paramref name="inFeatures"/> → <paramref name="outFeatures"/> applied to <paramref name="rows"/>
    /// vectors (the tokens of one image, or 1 for a per-image vector such as the timestep embedding).</summary>
    public void Linear(long rows, long inFeatures, long outFeatures, bool bias = true)
    {
        _parameters += inFeatures * outFeatures + (bias ? outFeatures : 0);
        _flops += 2.0 * rows * inFeatures * outFeatures;
    }

    /// <summary>A convolution with a square <paramref name="kernel"/> (1 for a 1×1 Conv1d or Conv2d) producing
    /// <paramref name="outPositions"/> output positions (pixels of the output map, or patches for a strided patch embedding).</summary>
    public void Conv(long outPositions, long inChannels, long outChannels, int kernel, bool bias = true)
    {
        long taps = (long)kernel * kernel;
        _parameters += outChannels * inChannels * taps + (bias ? outChannels : 0);
        _flops += 2.0 * outPositions * outChannels * inChannels * taps;
    }

    /// <summary>The two attention products, QKᵀ and AV, of <paramref name="queries"/> against <paramref name="keys"/>
    /// with heads × head width = <paramref name="width"/>: 2 · 2 · queries · keys · width. No parameters.</summary>
    public void Attention(long queries, long keys, long width)
    {
        double flops = 2.0 * 2.0 * queries * keys * width;
        _flops += flops;
        _attentionFlops += flops;
    }

    /// <summary>Parameters that cost no counted FLOPs: embedding and position tables, norm scales and shifts.</summary>
    public void Weights(long count) => _parameters += count;

    /// <summary>The totals so far.</summary>
    public ModelCost ToCost() => new(_parameters, _flops) { AttentionFlops = _attentionFlops };
}
