using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Diffusion;

/// <summary>The reverse-process samplers.</summary>
public enum SamplerKind
{
    /// <summary>Ancestral sampling with the model's (learned) variance.</summary>
    Ddpm,
    /// <summary>DDIM; deterministic at eta = 0.</summary>
    Ddim,
    /// <summary>DPM-Solver++(2M): deterministic second-order multistep, good in 10–25 steps.</summary>
    DpmSolverPP2M,
}

/// <summary>
/// One entry point for sampling: respace the training process to the requested step count, then run the chosen
/// sampler's loop from a given start noise.
/// </summary>
public static class Samplers
{
    /// <summary>The sampler of a name (<c>ddpm</c>, <c>ddim</c>, <c>dpm++2m</c>; see <see cref="Name"/>).</summary>
    public static SamplerKind Parse(string name) => (name ?? "").Trim().ToLowerInvariant() switch
    {
        "ddpm" => SamplerKind.Ddpm,
        "ddim" => SamplerKind.Ddim,
        "dpm++2m" or "dpmpp2m" or "dpm-solver++" or "dpmsolver++" or "dpmsolverpp2m" => SamplerKind.DpmSolverPP2M,
        _ => throw new LdmException($"unknown sampler '{name}'; use ddim, ddpm or dpm++2m."),
    };

    /// <summary>The one name of a sampler, as <see cref="Parse"/> reads it and reports print it.</summary>
    public static string Name(SamplerKind kind) => kind switch
    {
        SamplerKind.Ddpm => "ddpm",
        SamplerKind.Ddim => "ddim",
        SamplerKind.DpmSolverPP2M => "dpm++2m",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
    };

    /// <summary>The training process respaced to <paramref name="steps"/> evenly spaced steps (DiT's sample.py).</summary>
    public static GaussianDiffusion CreateDiffusion(DiffusionConfig training, int steps) =>
        new(training.WithSamplingSteps(steps));

    /// <summary>Runs <paramref name="kind"/> over every step of <paramref name="diffusion"/> from z.</summary>
    /// <param name="diffusion">The (respaced) process to run, e.g. from <see cref="CreateDiffusion"/>.</param>
    /// <param name="kind">The sampler.</param>
    /// <param name="model">The denoiser (guidance and conditioning already bound).</param>
    /// <param name="z">Start noise (N, C, H, W).</param>
    /// <param name="noise">Per-step draws (called with x's shape once per step).</param>
    /// <param name="eta">DDIM's stochasticity (ignored by the others; DPM-Solver++ draws no noise).</param>
    /// <param name="clipDenoised">Clamp x_0 predictions to [−1, 1] (pixel-space models).</param>
    /// <param name="onStep">Called after every step (see <see cref="SamplingStep"/>).</param>
    public static Tensor Sample(GaussianDiffusion diffusion, SamplerKind kind, Denoiser model, Tensor z, Func<long[], Tensor> noise,
        double eta = 0.0, bool clipDenoised = false, Action<SamplingStep>? onStep = null) => kind switch
    {
        SamplerKind.Ddpm => diffusion.PSampleLoop(model, z, clipDenoised, noise, onStep),
        SamplerKind.Ddim => diffusion.DdimSampleLoop(model, z, clipDenoised, eta, noise, onStep),
        SamplerKind.DpmSolverPP2M => DpmSolverPlusPlus.Sample2M(diffusion, model, z, clipDenoised, onStep),
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    /// <summary><see cref="Sample(GaussianDiffusion, SamplerKind, Denoiser, Tensor, Func{long[], Tensor}, double, bool, Action{SamplingStep}?)"/>
    /// with draws from a generator.</summary>
    public static Tensor Sample(GaussianDiffusion diffusion, SamplerKind kind, Denoiser model, Tensor z, Generator generator,
        double eta = 0.0, bool clipDenoised = false, Action<SamplingStep>? onStep = null) =>
        Sample(diffusion, kind, model, z, GaussianDiffusion.NoiseFrom(generator, z), eta, clipDenoised, onStep);
}
