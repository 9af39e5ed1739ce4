namespace LatentDiffusion.Training;

/// <summary>Settings of a diffusion training run. Defaults follow DiT (AdamW lr 1e-4, no weight decay, EMA 0.9999).</summary>
public sealed record DiffusionTrainingOptions
{
    /// <summary>Optimizer steps of the whole run; a resume may raise it to continue a finished run.</summary>
    public int Steps { get; init; } = 10_000;
    /// <summary>Examples per step.</summary>
    public int BatchSize { get; init; } = 64;
    /// <summary>Peak AdamW learning rate, reached after <see cref="WarmupSteps"/> (DiT: 1e-4).</summary>
    public double LearningRate { get; init; } = 1e-4;
    /// <summary>AdamW decoupled weight decay (DiT: 0).</summary>
    public double WeightDecay { get; init; }
    /// <summary>Linear learning-rate warm-up over this many steps (0 = none).</summary>
    public int WarmupSteps { get; init; }
    /// <summary>Clip the global gradient norm to this value (0 = no clipping).</summary>
    public double GradClip { get; init; }
    /// <summary>Decay of the exponential moving average of the weights; the EMA model is the one sampled and saved.</summary>
    public double EmaDecay { get; init; } = 0.9999;
    /// <summary>Seed of the initial weights, the data order and every random draw; with the step it fixes the whole run.</summary>
    public long Seed { get; init; }
    /// <summary>
    /// The dtype of the forward and backward passes: Float32 (the default), BFloat16 (mixed precision: bf16 passes with
    /// float32 master weights, optimizer state and loss) or <see cref="ComputeDtype.Auto"/> (the faster of the two on the
    /// machine, see <see cref="Diagnostics.ComputePrecision"/>). A speed setting: a run may resume in another dtype.
    /// </summary>
    public ComputeDtype Dtype { get; init; } = ComputeDtype.Float32;
    /// <summary>Mixed precision (bf16 passes, float32 master weights): the same as <c>Dtype = ComputeDtype.BFloat16</c>.</summary>
    [Obsolete("Set Dtype = ComputeDtype.BFloat16 (or ComputeDtype.Auto).")]
    [System.Text.Json.Serialization.JsonIgnore]
    public bool Bf16
    {
        get => Dtype == ComputeDtype.BFloat16;
        init => Dtype = value ? ComputeDtype.BFloat16 : ComputeDtype.Float32;
    }
    /// <summary>Random horizontal flips of training images.</summary>
    public bool HorizontalFlip { get; init; }
    /// <summary>Write one metrics entry (means over the interval) every this many steps (and at the end).</summary>
    public int LogEvery { get; init; } = 10;
    /// <summary>Write the resumable training state every this many steps (and at the end).</summary>
    public int CheckpointEvery { get; init; } = 1000;
    /// <summary>Write a sample grid every this many steps (0 = only at the end).</summary>
    public int SampleEvery { get; init; }

    /// <summary>A resume may go on with settings that differ from the run's (learning rate, model shape, data size, ...):
    /// the trainer lists them in <c>ChangedSettings</c> and records the new ones. Without it such a resume is refused
    /// with a <see cref="RunSettingsChangedException"/>. Not a setting of the run itself.</summary>
    public bool AllowChangedSettings { get; init; }

    /// <summary>Checks every setting and throws <see cref="LdmOptionException"/> naming the first bad one; the trainer calls it.</summary>
    public void Validate()
    {
        static LdmOptionException Bad(string property, object? value, string requirement, string? hint = null) =>
            new(nameof(DiffusionTrainingOptions), property, value, requirement, hint);
        if (Steps < 1) throw Bad(nameof(Steps), Steps, "be at least 1");
        if (BatchSize < 1) throw Bad(nameof(BatchSize), BatchSize, "be at least 1");
        if (!(LearningRate > 0) || !double.IsFinite(LearningRate)) throw Bad(nameof(LearningRate), LearningRate, "be a positive number", "DiT uses 1e-4");
        if (!(WeightDecay >= 0)) throw Bad(nameof(WeightDecay), WeightDecay, "be at least 0");
        if (WarmupSteps < 0) throw Bad(nameof(WarmupSteps), WarmupSteps, "be at least 0");
        if (!(GradClip >= 0)) throw Bad(nameof(GradClip), GradClip, "be at least 0 (0 = off)");
        if (!(EmaDecay >= 0 && EmaDecay < 1)) throw Bad(nameof(EmaDecay), EmaDecay, "be in [0, 1)", "DiT uses 0.9999");
        if (LogEvery < 1) throw Bad(nameof(LogEvery), LogEvery, "be at least 1");
        if (CheckpointEvery < 1) throw Bad(nameof(CheckpointEvery), CheckpointEvery, "be at least 1");
        if (Dtype.Fixed is not (null or TorchSharp.torch.ScalarType.Float32 or TorchSharp.torch.ScalarType.BFloat16))
            throw Bad(nameof(Dtype), Dtype, "be float32, bf16 or auto", "training computes in float32 or bf16 mixed precision");
        if (SampleEvery < 0) throw Bad(nameof(SampleEvery), SampleEvery, "be at least 0 (0 = at the end only)");
    }
}
