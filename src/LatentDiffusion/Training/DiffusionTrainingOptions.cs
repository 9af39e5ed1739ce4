namespace LatentDiffusion.Training;

/// <summary>Settings of a diffusion training run. Defaults follow DiT (AdamW lr 1e-4, no weight decay, EMA 0.9999).</summary>
public sealed record DiffusionTrainingOptions
{
    public int Steps { get; init; } = 10_000;
    public int BatchSize { get; init; } = 64;
    public double LearningRate { get; init; } = 1e-4;
    public double WeightDecay { get; init; }
    /// <summary>Linear learning-rate warm-up over this many steps (0 = none).</summary>
    public int WarmupSteps { get; init; }
    /// <summary>Clip the global gradient norm to this value (0 = no clipping).</summary>
    public double GradClip { get; init; }
    public double EmaDecay { get; init; } = 0.9999;
    public long Seed { get; init; }
    /// <summary>bf16 forward/backward with float32 master weights, optimizer state and loss.</summary>
    public bool Bf16 { get; init; }
    /// <summary>Random horizontal flips of training images.</summary>
    public bool HorizontalFlip { get; init; }
    public int LogEvery { get; init; } = 10;
    public int CheckpointEvery { get; init; } = 1000;
    /// <summary>Write a sample grid every this many steps (0 = only at the end).</summary>
    public int SampleEvery { get; init; }

    public void Validate()
    {
        static LdmException Bad(string what) => new($"{what}.");
        if (Steps < 1) throw Bad($"--steps must be at least 1, got {Steps}");
        if (BatchSize < 1) throw Bad($"--batch-size must be at least 1, got {BatchSize}");
        if (!(LearningRate > 0) || !double.IsFinite(LearningRate)) throw Bad($"--lr must be a positive number, got {LearningRate}; DiT uses 1e-4");
        if (WeightDecay < 0) throw Bad($"--weight-decay must be >= 0, got {WeightDecay}");
        if (WarmupSteps < 0) throw Bad($"--warmup must be >= 0, got {WarmupSteps}");
        if (GradClip < 0) throw Bad($"--grad-clip must be >= 0 (0 = off), got {GradClip}");
        if (EmaDecay < 0 || EmaDecay >= 1) throw Bad($"--ema-decay must be in [0, 1), got {EmaDecay}; DiT uses 0.9999");
        if (LogEvery < 1) throw Bad($"--log-every must be at least 1, got {LogEvery}");
        if (CheckpointEvery < 1) throw Bad($"--checkpoint-every must be at least 1, got {CheckpointEvery}");
        if (SampleEvery < 0) throw Bad($"--sample-every must be >= 0, got {SampleEvery}");
    }
}
