using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Training;

/// <summary>
/// Exponential moving average of a model's weights (DiT uses decay 0.9999 and samples from the EMA model).
/// The EMA model is a separate module of the same architecture, kept in float32 and never trained directly.
/// </summary>
internal static class Ema
{
    /// <summary>
    /// The decay used after <paramref name="step"/> optimisation steps (0-based): min(decay, (1 + step) / (10 + step)),
    /// the warm-up of diffusers' EMAModel. Without it an EMA of decay 0.999 still holds 37 % of the random initial
    /// weights after 1000 steps, which spoils the short runs a CPU affords; from a few thousand steps on it is the plain decay.
    /// </summary>
    public static double DecayAt(double decay, long step) => Math.Min(decay, (1.0 + step) / (10.0 + step));

    /// <summary>ema ← decay·ema + (1 − decay)·model, for every floating-point parameter and buffer.</summary>
    public static void Update(nn.Module ema, nn.Module model, double decay)
    {
        using var _ = torch.no_grad();
        // Scalars made once and disposed at the end: TorchSharp's implicit ones (from a double) can be finalized by the
        // GC while libtorch still reads them, which killed long runs ("Expected false to be true" in Scalar::toFloat).
        using var keep = decay.ToScalar();
        using var take = (1 - decay).ToScalar();
        var src = model.state_dict();
        foreach (var (name, e) in ema.state_dict()) Blend(e, src[name], keep, take);
    }

    /// <summary>
    /// The same update when both models' trained parameters are laid out alike (<see cref="FlatParameters"/>): one blend
    /// over the whole buffer, then the rest of the state (buffers, fixed parameters) entry by entry as above.
    /// </summary>
    public static void Update(FlatParameters ema, FlatParameters model, double decay)
    {
        if (!ema.SameLayout(model)) throw new ArgumentException("the EMA and the model are laid out differently");
        using var _ = torch.no_grad();
        using var keep = decay.ToScalar();
        using var take = (1 - decay).ToScalar();
        ema.Values.mul_(keep).add_(model.Values, alpha: take);
        var flat = new HashSet<string>(ema.Names);
        var src = model.Module.state_dict();
        foreach (var (name, e) in ema.Module.state_dict())
            if (!flat.Contains(name)) Blend(e, src[name], keep, take);
    }

    /// <summary>e ← keep·e + take·source for floating-point state; integer state (counters) is copied.</summary>
    static void Blend(Tensor e, Tensor source, Scalar keep, Scalar take)
    {
        if (!e.is_floating_point()) e.copy_(source);
        else e.mul_(keep).add_(source, alpha: take);
    }

    /// <summary>Copies the model's weights into the EMA model (start of training).</summary>
    public static void CopyFrom(nn.Module ema, nn.Module model)
    {
        using var _ = torch.no_grad();
        var src = model.state_dict();
        foreach (var (name, e) in ema.state_dict()) e.copy_(src[name]);
    }
}
