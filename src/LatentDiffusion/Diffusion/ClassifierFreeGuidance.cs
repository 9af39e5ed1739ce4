using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Diffusion;

/// <summary>
/// Classifier-free guidance: ε = ε_uncond + s·(ε_cond − ε_uncond) on the guided channels [0, guidedChannels) of the
/// model's ε part; every other output channel (the rest of ε, the learned-variance values) is taken unguided.
/// s = 1 is the plain conditional model. By default all ε channels (x's channel count) are guided; DiT's official
/// <c>forward_with_cfg</c> guides only 3 (a reproducibility quirk, see <see cref="OfficialDitGuidedChannels"/>).
/// </summary>
public static class ClassifierFreeGuidance
{
    /// <summary>The number of channels DiT's released sampling code guides (its FID numbers were made so).</summary>
    public const int OfficialDitGuidedChannels = 3;

    /// <summary>Guided output from a conditional and an unconditional output of the same x.</summary>
    /// <param name="cond">Conditional model output (N, C', H, W).</param>
    /// <param name="uncond">Unconditional model output, same shape.</param>
    /// <param name="scale">Guidance scale s (1 = conditional only).</param>
    /// <param name="guidedChannels">Leading channels to guide; null = all <paramref name="epsChannels"/>.</param>
    /// <param name="epsChannels">Channels of the ε part (x's channel count).</param>
    public static Tensor Combine(Tensor cond, Tensor uncond, double scale, long epsChannels, int? guidedChannels = null)
    {
        if (!cond.shape.SequenceEqual(uncond.shape))
            throw new ArgumentException("conditional and unconditional outputs must have the same shape");
        long g = Guided(guidedChannels, epsChannels);
        using var scope = torch.NewDisposeScope();
        var condEps = cond.narrow(1, 0, g);
        var guided = uncond.narrow(1, 0, g) + scale * (condEps - uncond.narrow(1, 0, g));
        var result = g == cond.shape[1] ? guided : torch.cat([guided, cond.narrow(1, g, cond.shape[1] - g)], 1);
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>Guidance from two denoisers (a model without the doubled-batch trick, or two separate models).</summary>
    public static Denoiser FromPair(Denoiser conditional, Denoiser unconditional, double scale, int? guidedChannels = null)
    {
        CheckScale(scale);
        return (x, t) =>
        {
            using var scope = torch.NewDisposeScope();
            var cond = conditional(x, t);
            var uncond = unconditional(x, t);
            return Combine(cond, uncond, scale, x.shape[1], guidedChannels).MoveToOuterDisposeScope();
        };
    }

    /// <summary>
    /// Guidance in one model call over a doubled batch. The returned denoiser takes the N samples being generated;
    /// <paramref name="doubledModel"/> receives [x; x] (2N rows) and must be bound to the conditions [cond; uncond]
    /// (e.g. labels followed by N null labels). Unguided channels come from the conditional half.
    /// </summary>
    public static Denoiser OverDoubledBatch(Denoiser doubledModel, double scale, int? guidedChannels = null)
    {
        CheckScale(scale);
        return (x, t) =>
        {
            using var scope = torch.NewDisposeScope();
            long n = x.shape[0];
            var output = doubledModel(torch.cat([x, x], 0), torch.cat([t, t], 0));
            var cond = output.narrow(0, 0, n);
            var uncond = output.narrow(0, n, n);
            return Combine(cond, uncond, scale, x.shape[1], guidedChannels).MoveToOuterDisposeScope();
        };
    }

    /// <summary>
    /// DiT's <c>forward_with_cfg</c> exactly: the sampler state itself is the doubled batch (2N rows, as DiT's sample.py
    /// sets it up with z repeated); only its first half is used, duplicated; the guided ε fills both halves, and every
    /// unguided channel is passed through per row (the second half gets the unconditional rows' values). The first
    /// half of the final samples is the result. Use this to reproduce the official numbers; <see cref="OverDoubledBatch"/>
    /// gives the same first half at half the sampler cost.
    /// </summary>
    public static Denoiser OfficialDitForm(Denoiser doubledModel, double scale, int guidedChannels = OfficialDitGuidedChannels)
    {
        CheckScale(scale);
        return (x, t) =>
        {
            if (x.shape[0] % 2 != 0)
                throw new ArgumentException($"the doubled-batch state needs an even batch, got {x.shape[0]}");
            using var scope = torch.NewDisposeScope();
            long n = x.shape[0] / 2;
            var half = x.narrow(0, 0, n);
            var output = doubledModel(torch.cat([half, half], 0), t);
            long g = Guided(guidedChannels, x.shape[1]);
            var eps = output.narrow(1, 0, g);
            var condEps = eps.narrow(0, 0, n);
            var uncondEps = eps.narrow(0, n, n);
            var halfEps = uncondEps + scale * (condEps - uncondEps);
            var guided = torch.cat([halfEps, halfEps], 0);
            var result = g == output.shape[1] ? guided : torch.cat([guided, output.narrow(1, g, output.shape[1] - g)], 1);
            return result.MoveToOuterDisposeScope();
        };
    }

    static long Guided(int? guidedChannels, long epsChannels)
    {
        long g = guidedChannels ?? epsChannels;
        if (g < 1 || g > epsChannels)
            throw new LdmException($"guided channels must be between 1 and the {epsChannels} latent channels, got {g}; leave it unset to guide all channels.");
        return g;
    }

    static void CheckScale(double scale)
    {
        if (double.IsNaN(scale) || double.IsInfinity(scale) || scale < 0)
            throw new LdmException($"the guidance scale must be a finite number >= 0, got {scale}; use 1 for no guidance (DiT samples with 1.5 to 4).");
    }
}
