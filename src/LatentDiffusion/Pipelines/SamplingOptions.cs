using LatentDiffusion.Diffusion;
using static TorchSharp.torch;

namespace LatentDiffusion.Pipelines;

/// <summary>How to sample: sampler, step count, guidance, seed, batch size and compute dtype.</summary>
public sealed record SamplingOptions
{
    public SamplerKind Sampler { get; init; } = SamplerKind.Ddim;
    /// <summary>Reverse-process steps (the training process respaced evenly, as DiT's sample.py).</summary>
    public int Steps { get; init; } = 50;
    /// <summary>DDIM's stochasticity (0 = deterministic).</summary>
    public double Eta { get; init; }
    /// <summary>Classifier-free guidance scale; 1 = no guidance (the plain conditional model).</summary>
    public double GuidanceScale { get; init; } = 4.0;
    /// <summary>Leading ε channels to guide; null = all of them (DiT's released code guides 3).</summary>
    public int? GuidedChannels { get; init; }
    public long Seed { get; init; }
    /// <summary>Images generated per model batch (guidance doubles the model's batch).</summary>
    public int BatchSize { get; init; } = 32;
    /// <summary>Float32 or BFloat16 for the network; the diffusion arithmetic stays float32/float64.</summary>
    public ScalarType ComputeDtype { get; init; } = ScalarType.Float32;
    /// <summary>Clip predicted x0 to [-1, 1] (sensible in pixel space; off in latent space as DiT).</summary>
    public bool? ClipDenoised { get; init; }

    public void Validate()
    {
        if (Steps < 1) throw new LdmException($"--steps must be at least 1, got {Steps}; 50 to 250 is usual.");
        if (BatchSize < 1) throw new LdmException($"--batch-size must be at least 1, got {BatchSize}.");
        if (Eta < 0 || double.IsNaN(Eta)) throw new LdmException($"--eta must be >= 0, got {Eta}; 0 is deterministic DDIM.");
        if (GuidanceScale < 0 || !double.IsFinite(GuidanceScale)) throw new LdmException($"--guidance must be a finite number >= 0, got {GuidanceScale}; 1 means no guidance.");
        if (ComputeDtype is not (ScalarType.Float32 or ScalarType.BFloat16)) throw new LdmException($"sampling dtype must be float32 or bf16, got {ComputeDtype}.");
    }
}
