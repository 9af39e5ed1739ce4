using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Transformers;

static class Modulation
{
    /// <summary>adaLN: x·(1 + scale) + shift, with (N, D) scale and shift broadcast over the tokens of (N, T, D) x.</summary>
    public static Tensor Modulate(Tensor x, Tensor shift, Tensor scale)
    {
        using var s = scale.unsqueeze(1);
        using var onePlus = s + 1;
        using var scaled = x * onePlus;
        using var b = shift.unsqueeze(1);
        return scaled + b;
    }
}
