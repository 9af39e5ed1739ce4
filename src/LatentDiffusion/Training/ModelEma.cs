using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Training;

/// <summary>
/// Exponential moving average of a model's weights, kept in a second model of the same architecture:
/// ema ← decay · ema + (1 − decay) · model after every optimizer step; buffers are copied.
/// The average model is what gets evaluated and shipped (as in DiT and LDM).
/// </summary>
public static class ModelEma
{
    /// <summary>Copies every parameter and buffer of <paramref name="source"/> into <paramref name="ema"/>.</summary>
    public static void CopyInto(nn.Module source, nn.Module ema)
    {
        using var _ = torch.no_grad();
        var src = source.state_dict();
        foreach (var (name, t) in ema.state_dict()) t.copy_(src[name]);
    }

    public static void Update(nn.Module model, nn.Module ema, double decay)
    {
        using var _ = torch.no_grad();
        var src = model.state_dict();
        foreach (var (name, t) in ema.state_dict())
        {
            var s = src[name];
            if (t.is_floating_point()) t.lerp_(s, 1.0 - decay);
            else t.copy_(s);
        }
    }
}
