using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Diffusion;

/// <summary>Gaussian terms of the variational bound (DiT's <c>diffusion_utils</c>), elementwise, in nats.</summary>
internal static class GaussianLikelihood
{
    /// <summary>KL(N(mean1, e^logvar1) ‖ N(mean2, e^logvar2)) elementwise.</summary>
    public static Tensor NormalKl(Tensor mean1, Tensor logvar1, Tensor mean2, Tensor logvar2)
    {
        // Same association order as the reference so float32 rounding matches.
        return 0.5 * (-1.0 + logvar2 - logvar1 + (logvar1 - logvar2).exp() + (mean1 - mean2).pow(2) * (-logvar2).exp());
    }

    /// <summary>Standard normal CDF through the tanh approximation (the GELU one), as the reference computes it.</summary>
    public static Tensor ApproxStandardNormalCdf(Tensor x) =>
        0.5 * (1.0 + torch.tanh(Math.Sqrt(2.0 / Math.PI) * (x + 0.044715 * x.pow(3))));

    /// <summary>
    /// log-likelihood of x (uint8 images rescaled to [-1, 1]) under a Gaussian discretized into 256 bins of width 2/255;
    /// the edge bins extend to ±∞. Probabilities are clamped at 1e-12 before the log.
    /// </summary>
    public static Tensor DiscretizedGaussianLogLikelihood(Tensor x, Tensor means, Tensor logScales)
    {
        if (!x.shape.SequenceEqual(means.shape) || !x.shape.SequenceEqual(logScales.shape))
            throw new ArgumentException("x, means and logScales must have the same shape");
        var centered = x - means;
        var invStdv = (-logScales).exp();
        var cdfPlus = ApproxStandardNormalCdf(invStdv * (centered + 1.0 / 255.0));
        var cdfMin = ApproxStandardNormalCdf(invStdv * (centered - 1.0 / 255.0));
        var logCdfPlus = cdfPlus.clamp_min(1e-12).log();
        var logOneMinusCdfMin = (1.0 - cdfMin).clamp_min(1e-12).log();
        var logCdfDelta = (cdfPlus - cdfMin).clamp_min(1e-12).log();
        return torch.where(x < -0.999, logCdfPlus, torch.where(x > 0.999, logOneMinusCdfMin, logCdfDelta));
    }
}
