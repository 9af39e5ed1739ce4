namespace LatentDiffusion.Diffusion;

/// <summary>What the denoiser's first C output channels predict.</summary>
public enum ModelMeanType
{
    /// <summary>The noise ε that was added (DDPM, DiT).</summary>
    Epsilon,
    /// <summary>The clean sample x_0.</summary>
    StartX,
    /// <summary>The velocity v = √ᾱ_t·ε − √(1−ᾱ_t)·x_0.</summary>
    Velocity,
}

/// <summary>How the variance of p(x_{t-1} | x_t) is chosen.</summary>
public enum ModelVarianceType
{
    /// <summary>β_t (β̃_1 at t = 0 for a better decoder likelihood).</summary>
    FixedLarge,
    /// <summary>The posterior variance β̃_t.</summary>
    FixedSmall,
    /// <summary>The model outputs v ∈ [-1, 1] per element; log σ² = frac·log β_t + (1 − frac)·log β̃_t, frac = (v + 1)/2.</summary>
    LearnedRange,
}

/// <summary>The training objective.</summary>
public enum DiffusionLossType
{
    /// <summary>MSE on the mean prediction, plus the VB term (mean detached) when the variance is learned.</summary>
    Mse,
    /// <summary>As <see cref="Mse"/> with the VB term multiplied by T/1000.</summary>
    RescaledMse,
    /// <summary>The variational bound term only.</summary>
    Kl,
    /// <summary>The variational bound term times T (an estimate of the full bound).</summary>
    RescaledKl,
}
