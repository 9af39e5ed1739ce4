using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Autoencoders;

/// <summary>
/// The encoder's posterior q(z|x) = N(mean, diag(exp(logvar))), from the moments (B, 2·C, H, W) = [mean | logvar]
/// along channels. The log-variance is clamped to [−30, 20] as in CompVis, which keeps exp() finite.
/// The tensors belong to the dispose scope that was current when the distribution was made.
/// </summary>
public sealed class DiagonalGaussianDistribution
{
    /// <summary>Mean μ (B, C, H, W).</summary>
    public Tensor Mean { get; }
    /// <summary>log σ², clamped to [−30, 20].</summary>
    public Tensor LogVar { get; }
    /// <summary>σ = exp(½ log σ²).</summary>
    public Tensor Std { get; }
    /// <summary>σ² = exp(log σ²).</summary>
    public Tensor Var { get; }

    /// <summary>The distribution of moments (B, 2·C, H, W) = [mean | logvar] along channels (what the encoder's quant_conv gives).</summary>
    public DiagonalGaussianDistribution(Tensor moments)
    {
        if (moments.dim() < 2 || moments.shape[1] % 2 != 0)
            throw new ArgumentException($"moments need an even channel count (mean and log-variance), got shape [{string.Join(",", moments.shape)}]");
        var halves = moments.chunk(2, dim: 1);
        Mean = halves[0];
        LogVar = halves[1].clamp(-30.0, 20.0);
        halves[1].Dispose();
        Std = (0.5 * LogVar).exp();
        Var = LogVar.exp();
    }

    DiagonalGaussianDistribution(Tensor mean, Tensor logVar, Tensor std, Tensor var)
    {
        Mean = mean; LogVar = logVar; Std = std; Var = var;
    }

    /// <summary>Builds the distribution from a stored mean and std (e.g. from the latent cache).</summary>
    public static DiagonalGaussianDistribution FromMeanStd(Tensor mean, Tensor std)
    {
        var logVar = (2.0 * std.log()).clamp(-30.0, 20.0);
        return new DiagonalGaussianDistribution(mean, logVar, (0.5 * logVar).exp(), logVar.exp());
    }

    /// <summary>z = mean + std · ε with ε ~ N(0, I) drawn from the CPU <paramref name="generator"/> (global RNG if null)
    /// and moved to the mean's device, so a seed gives the same z on every device (docs/devices.md).</summary>
    public Tensor Sample(Generator? generator = null)
    {
        using var draw = torch.randn(Mean.shape, dtype: Mean.dtype, device: torch.CPU, generator: generator);
        using var eps = draw.to(Mean.device);
        return Sample(eps);
    }

    /// <summary>z = mean + std · ε for a given ε (same shape as the mean).</summary>
    public Tensor Sample(Tensor eps) { using var noise = Std * eps; return Mean + noise; }

    /// <summary>The mode of a Gaussian is its mean.</summary>
    public Tensor Mode() => Mean;

    /// <summary>KL(q ‖ N(0, I)) per sample, summed over C, H, W: ½ Σ (μ² + σ² − 1 − log σ²).</summary>
    public Tensor Kl() => 0.5 * (Mean.square() + Var - 1.0 - LogVar).sum([1, 2, 3]);

    /// <summary>KL(q ‖ other) per sample, summed over C, H, W.</summary>
    public Tensor Kl(DiagonalGaussianDistribution other) =>
        0.5 * ((Mean - other.Mean).square() / other.Var + Var / other.Var - 1.0 - LogVar + other.LogVar).sum([1, 2, 3]);

    /// <summary>Moves every tensor out of the current dispose scope (to return the distribution from a scope).</summary>
    public DiagonalGaussianDistribution MoveToOuterDisposeScope()
    {
        Mean.MoveToOuterDisposeScope(); LogVar.MoveToOuterDisposeScope(); Std.MoveToOuterDisposeScope(); Var.MoveToOuterDisposeScope();
        return this;
    }
}
