namespace LatentDiffusion.Training;

/// <summary>
/// Settings of <see cref="AutoencoderTrainer"/>. The loss is LDM's <c>LPIPSWithDiscriminator</c> without the LPIPS
/// term and without the learned log-variance (which starts at 0 and only rescales the L1 term): per image, the L1
/// reconstruction error summed over pixels + <see cref="KlWeight"/> · KL(q(z|x) ‖ N(0, I)), averaged over the batch,
/// plus, from <see cref="DiscriminatorStart"/> on, an adaptively weighted hinge-GAN term from a PatchGAN discriminator.
/// LPIPS is left out because its VGG weights cannot be obtained here; without it reconstructions are a little blurrier.
/// </summary>
public sealed record AutoencoderTrainingOptions
{
    /// <summary>Optimizer steps of the whole run; a resume may raise it to continue a finished run.</summary>
    public int Steps { get; init; } = 10_000;
    /// <summary>Images per step.</summary>
    public int BatchSize { get; init; } = 32;
    /// <summary>AdamW learning rate (LDM: 4.5e-6 × batch; larger here because our models are small).</summary>
    public double LearningRate { get; init; } = 2e-4;
    /// <summary>AdamW decoupled weight decay (LDM: 0).</summary>
    public double WeightDecay { get; init; } = 0.0;
    /// <summary>Adam betas of LDM's autoencoder training (0.5, 0.9).</summary>
    public double Beta1 { get; init; } = 0.5;
    /// <summary>Adam β2 (see <see cref="Beta1"/>).</summary>
    public double Beta2 { get; init; } = 0.9;
    /// <summary>Weight of the KL term (LDM kl-f4/f8: 1e-6).</summary>
    public double KlWeight { get; init; } = 1e-6;
    /// <summary>Step at which the discriminator starts (null: no GAN at all).</summary>
    public int? DiscriminatorStart { get; init; }
    /// <summary>Scale of the adaptive GAN weight (LDM: 0.5).</summary>
    public double DiscriminatorWeight { get; init; } = 0.5;
    /// <summary>Strided convolution layers of the PatchGAN discriminator (LDM: 3).</summary>
    public int DiscriminatorLayers { get; init; } = 3;
    /// <summary>Channels of the discriminator's first layer, doubled per layer (LDM: 64).</summary>
    public int DiscriminatorChannels { get; init; } = 64;
    /// <summary>Linear learning-rate warm-up over this many steps (0 = none).</summary>
    public int WarmupSteps { get; init; }
    /// <summary>Decay of the exponential moving average of the weights; the EMA model is the one saved.</summary>
    public double EmaDecay { get; init; } = 0.999;
    /// <summary>Mirror training images left-right with probability ½.</summary>
    public bool HorizontalFlip { get; init; }
    /// <summary>Seed of the initial weights, the data order and every random draw; with the step it fixes the whole run.</summary>
    public int Seed { get; init; }
    /// <summary>Write one metrics entry (means over the interval) every this many steps (and at the end).</summary>
    public int LogEvery { get; init; } = 10;
    /// <summary>Write the resumable training state every this many steps (and at the end).</summary>
    public int CheckpointEvery { get; init; } = 1000;
    /// <summary>Write a reconstruction grid every this many steps (0: never).</summary>
    public int SampleEvery { get; init; } = 500;
    /// <summary>Images used to measure the latent scale factor (1 / std of posterior samples).</summary>
    public int ScaleSamples { get; init; } = 1024;

    /// <summary>A resume may go on with settings that differ from the run's (learning rate, model shape, data size, ...):
    /// the trainer lists them in <c>ChangedSettings</c> and records the new ones. Without it such a resume is refused
    /// with a <see cref="RunSettingsChangedException"/>. Not a setting of the run itself.</summary>
    public bool AllowChangedSettings { get; init; }

    /// <summary>Checks every setting and throws <see cref="LdmOptionException"/> naming the first bad one; the trainer calls it.</summary>
    public void Validate()
    {
        static LdmOptionException Bad(string property, object? value, string requirement, string? hint = null) =>
            new(nameof(AutoencoderTrainingOptions), property, value, requirement, hint);
        if (Steps <= 0) throw Bad(nameof(Steps), Steps, "be at least 1");
        if (BatchSize <= 0) throw Bad(nameof(BatchSize), BatchSize, "be at least 1");
        if (!(LearningRate > 0) || !double.IsFinite(LearningRate)) throw Bad(nameof(LearningRate), LearningRate, "be a positive number");
        if (!(WeightDecay >= 0)) throw Bad(nameof(WeightDecay), WeightDecay, "be at least 0");
        if (!(Beta1 >= 0 && Beta1 < 1)) throw Bad(nameof(Beta1), Beta1, "be in [0, 1)", "LDM uses 0.5");
        if (!(Beta2 >= 0 && Beta2 < 1)) throw Bad(nameof(Beta2), Beta2, "be in [0, 1)", "LDM uses 0.9");
        if (!(KlWeight >= 0)) throw Bad(nameof(KlWeight), KlWeight, "be at least 0", "LDM uses 1e-6");
        if (DiscriminatorStart is < 0) throw Bad(nameof(DiscriminatorStart), DiscriminatorStart, "be at least 0");
        if (DiscriminatorLayers < 1) throw Bad(nameof(DiscriminatorLayers), DiscriminatorLayers, "be at least 1", "LDM uses 3");
        if (DiscriminatorChannels < 1) throw Bad(nameof(DiscriminatorChannels), DiscriminatorChannels, "be at least 1", "LDM uses 64");
        if (WarmupSteps < 0) throw Bad(nameof(WarmupSteps), WarmupSteps, "be at least 0");
        if (!(EmaDecay >= 0 && EmaDecay < 1)) throw Bad(nameof(EmaDecay), EmaDecay, "be in [0, 1)");
        if (LogEvery <= 0) throw Bad(nameof(LogEvery), LogEvery, "be at least 1");
        if (CheckpointEvery <= 0) throw Bad(nameof(CheckpointEvery), CheckpointEvery, "be at least 1");
        if (SampleEvery < 0) throw Bad(nameof(SampleEvery), SampleEvery, "be at least 0 (0 = never)");
        if (ScaleSamples <= 0) throw Bad(nameof(ScaleSamples), ScaleSamples, "be at least 1");
    }
}

/// <summary>What one training step measured.</summary>
/// <param name="Step">Steps done after this one.</param>
/// <param name="L1">Mean absolute reconstruction error per pixel value (images in [−1, 1]).</param>
/// <param name="Kl">KL per image (summed over latent elements), averaged over the batch.</param>
/// <param name="Loss">The autoencoder's total loss.</param>
/// <param name="GeneratorLoss">−mean(D(x̂)) (0 before the discriminator starts).</param>
/// <param name="DiscriminatorLoss">Hinge loss of the discriminator (0 before it starts).</param>
/// <param name="AdaptiveWeight">Weight given to the GAN term (0 before the discriminator starts).</param>
public sealed record AutoencoderStepResult(int Step, double L1, double Kl, double Loss, double GeneratorLoss, double DiscriminatorLoss, double AdaptiveWeight);
