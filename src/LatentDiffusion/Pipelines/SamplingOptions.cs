using LatentDiffusion.Denoisers;
using LatentDiffusion.Diffusion;

namespace LatentDiffusion.Pipelines;

/// <summary>How to sample: sampler, step count, guidance, seed and batch size. <see cref="DiffusionPipeline.DefaultOptions"/>
/// holds the ones a model recommends.</summary>
public sealed record SamplingOptions
{
    /// <summary>The reverse-process sampler.</summary>
    public SamplerKind Sampler { get; init; } = SamplerKind.Ddim;
    /// <summary>Reverse-process steps (the training process respaced evenly, as DiT's sample.py).</summary>
    public int Steps { get; init; } = 50;
    /// <summary>DDIM's stochasticity (0 = deterministic).</summary>
    public double Eta { get; init; }
    /// <summary>Classifier-free guidance scale; 1 = no guidance (the plain conditional model).</summary>
    public double GuidanceScale { get; init; } = 4.0;
    /// <summary>Leading ε channels to guide; null = all of them (DiT's released code guides 3).</summary>
    public int? GuidedChannels { get; init; }
    /// <summary>Seed of the start noise and of every per-step draw: the same seed gives the same images.</summary>
    public long Seed { get; init; }
    /// <summary>Images generated per model batch (guidance doubles the model's batch).</summary>
    public int BatchSize { get; init; } = 32;
    /// <summary>Clip predicted x0 to [-1, 1]; null = on in pixel space, off in latent space (as DiT).</summary>
    public bool? ClipDenoised { get; init; }

    /// <summary>A model's recommended settings as options (seed 0, batch 32).</summary>
    public static SamplingOptions From(RecommendedSampling recommended) =>
        new() { Sampler = recommended.Sampler, Steps = recommended.Steps, GuidanceScale = recommended.GuidanceScale };

    /// <summary>Throws <see cref="LdmOptionException"/> naming the first setting no sampler accepts.</summary>
    public void Validate()
    {
        const string owner = nameof(SamplingOptions);
        if (Steps < 1) throw new LdmOptionException(owner, nameof(Steps), Steps, "be at least 1", "50 to 250 is usual");
        if (BatchSize < 1) throw new LdmOptionException(owner, nameof(BatchSize), BatchSize, "be at least 1");
        if (!(Eta >= 0)) throw new LdmOptionException(owner, nameof(Eta), Eta, "be >= 0", "0 is deterministic DDIM");
        if (!(GuidanceScale >= 0) || !double.IsFinite(GuidanceScale))
            throw new LdmOptionException(owner, nameof(GuidanceScale), GuidanceScale, "be a finite number >= 0", "1 means no guidance");
        if (GuidedChannels is < 1) throw new LdmOptionException(owner, nameof(GuidedChannels), GuidedChannels, "be at least 1 (or null for all channels)");
    }
}
