using System.Globalization;
using System.Text.Json.Nodes;
using LatentDiffusion.Autoencoders;
using LatentDiffusion.Data;
using LatentDiffusion.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Training;

/// <summary>
/// Trains a KL autoencoder on an image data set (see <see cref="AutoencoderTrainingOptions"/> for the loss) with AdamW,
/// an EMA of the weights and reconstruction grids. A run folder that already holds a checkpoint is resumed, provided it
/// asks for the same settings.
/// <para>Run folder: <c>checkpoint.safetensors</c> (model, EMA, discriminator, optimizer states, step, settings),
/// <c>autoencoder.safetensors</c> (the EMA model with its measured latent scale, written when the run finishes: the file
/// to use), <c>metrics.jsonl</c>, <c>samples/recon_XXXXXX.png</c> (top: inputs, bottom: EMA reconstructions).
/// Without a run folder (null) nothing is written and <see cref="Ema"/> gets its latent scale at the end.</para>
/// <para>Randomness: the data order is a function of (seed, step); the flips and posterior samples of step s come from
/// one generator seeded by (seed, s), and dropout (if any) from the global torch seed set from (seed, s), so the step
/// number is the whole random state and a resumed run repeats the uninterrupted run's losses exactly.</para>
/// </summary>
public sealed class AutoencoderTrainer : ITrainable, IDisposable
{
    /// <summary>File names in a run folder: the resumable state, the finished EMA autoencoder, the metrics log.</summary>
    public const string CheckpointFile = TrainingRun.CheckpointFile, ModelFile = "autoencoder.safetensors", MetricsFile = TrainingRun.MetricsFile;
    /// <summary>The training state file of earlier versions (TorchSharp optimizer state); it cannot be resumed.</summary>
    const string LegacyStateFile = "train_state.safetensors";
    /// <summary>Options that may change between a run and its resume (they do not change the curve).</summary>
    static readonly string[] ResumableOptions = [nameof(AutoencoderTrainingOptions.Steps), nameof(AutoencoderTrainingOptions.LogEvery),
        nameof(AutoencoderTrainingOptions.CheckpointEvery), nameof(AutoencoderTrainingOptions.SampleEvery), nameof(AutoencoderTrainingOptions.ScaleSamples),
        nameof(AutoencoderTrainingOptions.AllowChangedSettings)];
    const string Advice = "Lower LearningRate.";

    readonly ImageDataset _data;
    readonly AutoencoderKL _model, _ema;
    readonly NLayerDiscriminator? _disc;
    readonly AdamW _opt;
    readonly AdamW? _discOpt;
    readonly DataOrder _order;
    readonly TrainingRun _run;
    readonly RunSettings _settings;
    AutoencoderStepResult? _last;

    /// <summary>Where the networks train.</summary>
    public Device Device { get; }
    /// <summary>The settings of this run (validated).</summary>
    public AutoencoderTrainingOptions Options { get; }
    /// <summary>The run folder, or null for a run in memory.</summary>
    public string? RunDir => _run.RunDir;
    /// <summary>Steps done so far.</summary>
    public long Step => _run.Step;
    /// <summary>The settings this resume changed (allowed by <see cref="AutoencoderTrainingOptions.AllowChangedSettings"/>; old → new); empty for a new run or an unchanged resume.</summary>
    public IReadOnlyList<RunSettingChange> ChangedSettings => _run.ChangedSettings;
    /// <summary>The step of the checkpoint this run resumed from, or null for a new run.</summary>
    public long? ResumedFromStep => _run.ResumedFromStep;
    /// <summary>The run has reached <see cref="AutoencoderTrainingOptions.Steps"/>; <see cref="Run"/> does nothing, a larger Steps continues it.</summary>
    public bool IsFinished => _run.IsFinished;
    /// <summary>The metrics entries logged by this trainer (also in <c>metrics.jsonl</c> of a run folder).</summary>
    public IReadOnlyList<IReadOnlyDictionary<string, object>> Metrics => _run.Metrics;
    /// <summary>The model being trained.</summary>
    public AutoencoderKL Model => _model;
    /// <summary>The EMA of the weights: what is evaluated and saved.</summary>
    public AutoencoderKL Ema => _ema;

    /// <summary>A new run, or the run saved in <paramref name="runDir"/> resumed; refuses a run folder holding another kind of run or other settings.</summary>
    /// <param name="config">The autoencoder's architecture; its channels must match the data's.</param>
    /// <param name="data">The training images; the caller keeps ownership.</param>
    /// <param name="options">The run's settings.</param>
    /// <param name="runDir">The run folder, or null to train in memory without writing files.</param>
    /// <param name="device">Where the networks train (default: the CPU); random draws are made on the CPU.</param>
    public AutoencoderTrainer(AutoencoderConfig config, ImageDataset data, AutoencoderTrainingOptions options, string? runDir, Device? device = null)
    {
        Device = device ?? torch.CPU;
        options.Validate();
        config.Validate();
        if (data.Count == 0) throw new LdmException($"the data set '{data.Source}' is empty; give a folder or data set with images.");
        if (data.Channels != config.InChannels)
            throw new LdmException($"the data has {data.Channels}-channel images but the autoencoder takes {config.InChannels}; choose a config with in_channels = out_ch = {data.Channels}.");
        if (data.ImageSize % config.DownsampleFactor != 0)
            throw new LdmException($"image size {data.ImageSize} is not divisible by the autoencoder's factor {config.DownsampleFactor}; resize the images or use fewer levels.");
        if (runDir != null && File.Exists(Path.Combine(runDir, LegacyStateFile)) && !File.Exists(Path.Combine(runDir, CheckpointFile)))
            throw new LdmException($"'{runDir}' holds a training state of an earlier ldm version ({LegacyStateFile}) that cannot be resumed; choose a new run folder.");
        Options = options;
        _data = data;
        _order = new DataOrder(data.Count, options.Seed);

        _model = new AutoencoderKL(config);
        using (var init = new Generator(StepSeeds.Mix(options.Seed, StepSeeds.InitStream))) _model.ResetParameters(init);
        _ema = new AutoencoderKL(config);
        _model.to(Device);
        _ema.to(Device);
        Training.Ema.CopyFrom(_ema, _model);
        _ema.eval();
        foreach (var p in _ema.parameters()) p.requires_grad = false;
        _opt = AdamW.For(_model, options.LearningRate, options.WeightDecay, options.Beta1, options.Beta2);
        if (options.DiscriminatorStart is not null)
        {
            using var init = new Generator(StepSeeds.Mix(options.Seed, StepSeeds.DiscriminatorInitStream));
            _disc = new NLayerDiscriminator(config.OutCh, options.DiscriminatorChannels, options.DiscriminatorLayers, init);
            _disc.to(Device);
            _discOpt = AdamW.For(_disc, options.LearningRate, options.WeightDecay, options.Beta1, options.Beta2);
        }
        _settings = new RunSettings().Add(config.ToJson()).AddOptions(options, ResumableOptions)
            .AddSinceLaterVersion(RunSettingChange.DataCount, JsonValue.Create((long)data.Count));
        try { _run = new TrainingRun(this, new TrainingSchedule(options.Steps, options.LearningRate, options.WarmupSteps, options.LogEvery, options.CheckpointEvery), runDir, Advice); }
        catch { Dispose(); throw; }
    }

    /// <summary>Trains until <see cref="AutoencoderTrainingOptions.Steps"/>, writing grids on the way; checkpoints on schedule,
    /// when cancelled and at the end, where it also measures the latent scale and saves the model. Returns the last step's
    /// result (null when the run was already finished).</summary>
    public AutoencoderStepResult? Run(Action<AutoencoderStepResult>? onStep = null, CancellationToken cancel = default)
    {
        AutoencoderStepResult? last = null;
        _run.Run(_ => { last = _last!; onStep?.Invoke(last); }, cancel, step =>
        {
            if (RunDir != null && Options.SampleEvery > 0 && step % Options.SampleEvery == 0) SaveReconstructionGrid();
        });
        return last;
    }

    /// <summary>One optimizer step (autoencoder, then discriminator once it is on), without a checkpoint.</summary>
    public AutoencoderStepResult TrainStep()
    {
        _run.StepOnce();
        return _last!;
    }

    /// <summary>Writes the checkpoint now (and, once finished, the model).</summary>
    public void SaveCheckpoint() => _run.SaveCheckpoint();

    IReadOnlyDictionary<string, double> ITrainable.TrainStep(long step, double lr)
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed((long)StepSeeds.Mix(Options.Seed, StepSeeds.DropoutStream, step)); // dropout, if any
        using var generator = new Generator(StepSeeds.Mix(Options.Seed, step));
        _model.train();
        using var batch = _data.GetBatch(_order.IndicesForStep(step, Options.BatchSize), Options.HorizontalFlip ? generator : null);
        var x = batch.Images.to(Device);
        long n = x.shape[0];
        var (rec, posterior) = _model.Reconstruct(x, samplePosterior: true, generator);
        var absErr = (x - rec).abs();
        // LDM normalises by the batch only: per-image sums, so the KL weight means the same as in LDM's configs.
        var nll = absErr.sum() / n;
        var kl = posterior.Kl().sum() / n;
        var loss = nll + Options.KlWeight * kl;
        bool gan = _disc is not null && step >= Options.DiscriminatorStart;
        double gValue = 0, dValue = 0, weight = 0;
        if (gan)
        {
            _disc!.train();
            var gLoss = -_disc.forward(rec).mean();
            weight = AdaptiveWeight(nll, gLoss) * Options.DiscriminatorWeight;
            loss = loss + weight * gLoss;
            gValue = gLoss.item<float>();
        }
        _opt.ZeroGrad();
        loss.backward();
        _opt.LearningRate = lr;
        _opt.StepOnce();
        if (gan)
        {
            _discOpt!.ZeroGrad();
            var real = _disc!.forward(x.detach());
            var fake = _disc.forward(rec.detach());
            var dLoss = 0.5 * (nn.functional.relu(1.0 - real).mean() + nn.functional.relu(1.0 + fake).mean());
            dLoss.backward();
            _discOpt.LearningRate = lr;
            _discOpt.StepOnce();
            dValue = dLoss.item<float>();
        }
        Training.Ema.Update(_ema, _model, Training.Ema.DecayAt(Options.EmaDecay, step));
        _last = new AutoencoderStepResult((int)(step + 1), absErr.mean().item<float>(), kl.item<float>(), loss.item<float>(), gValue, dValue, weight);
        return new Dictionary<string, double>
        {
            ["l1"] = _last.L1, ["kl"] = _last.Kl, ["loss"] = _last.Loss, ["g_loss"] = gValue, ["d_loss"] = dValue, ["d_weight"] = weight,
        };
    }

    /// <summary>LDM's adaptive GAN weight: ‖∇_last L_rec‖ / (‖∇_last L_G‖ + 1e−4), clamped to [0, 1e4], where "last" is the
    /// decoder's output conv weight; it balances the two gradients at the layer they share.</summary>
    double AdaptiveWeight(Tensor nll, Tensor gLoss)
    {
        var last = _model.LastLayerWeight;
        var nllGrad = torch.autograd.grad([nll], [last], retain_graph: true)[0];
        var gGrad = torch.autograd.grad([gLoss], [last], retain_graph: true)[0];
        double w = nllGrad.norm().item<float>() / (gGrad.norm().item<float>() + 1e-4);
        return Math.Clamp(w, 0.0, 1e4);
    }

    /// <summary>Writes <paramref name="path"/> (default <c>samples/recon_{step}.png</c> in the run folder): the first (up to 8)
    /// images of the data set above their EMA reconstructions.</summary>
    public string SaveReconstructionGrid(string? path = null)
    {
        path ??= RunDir is { } dir ? Path.Combine(dir, "samples", $"recon_{Step:D6}.png")
            : throw new LdmException("this run has no run folder to put a reconstruction grid in; give the grid's path.");
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        long k = Math.Min(8, _data.Count);
        using var batch = _data.GetBatch(Enumerable.Range(0, (int)k).Select(i => (long)i).ToArray());
        var rec = _ema.forward(batch.Images.to(Device)).clamp(-1, 1).cpu();
        ImageGrid.Save(path, torch.cat([batch.Images, rec], 0), (int)k);
        return path;
    }

    /// <summary>1 / std of posterior samples of the EMA model over the first <see cref="AutoencoderTrainingOptions.ScaleSamples"/>
    /// images (LDM's <c>scale_by_std</c>), so that scaled latents have unit variance for the diffusion model.</summary>
    public double MeasureLatentScale() =>
        AutoencoderEvaluation.MeasureLatentScale(_ema, _data, Options.ScaleSamples, Options.BatchSize, StepSeeds.Mix(Options.Seed, StepSeeds.LatentScaleStream));

    // ---- ITrainable: what the run saves, restores and checks ----

    string ITrainable.Kind => "autoencoder-kl";
    RunSettings ITrainable.Settings => _settings;
    bool ITrainable.AllowChangedSettings => Options.AllowChangedSettings;

    IReadOnlyDictionary<string, string> ITrainable.CheckpointMetadata =>
        new Dictionary<string, string> { [ModelCheckpoint.ConfigKey] = _model.Config.ToJson().ToJsonString() };

    IReadOnlyDictionary<string, Tensor> ITrainable.StateTensors()
    {
        var tensors = new Dictionary<string, Tensor>();
        foreach (var (k, v) in _model.state_dict()) tensors["model." + k] = v.detach();
        foreach (var (k, v) in _ema.state_dict()) tensors["ema." + k] = v.detach();
        foreach (var (k, v) in _opt.StateTensors()) tensors["optim." + k] = v;
        if (_disc != null)
        {
            foreach (var (k, v) in _disc.state_dict()) tensors["discriminator." + k] = v.detach();
            foreach (var (k, v) in _discOpt!.StateTensors()) tensors["discriminator_optim." + k] = v;
        }
        return tensors;
    }

    void ITrainable.LoadState(IReadOnlyDictionary<string, Tensor> state, string source)
    {
        StateDict.Load(_model, TrainingRun.Part(state, "model."), source);
        StateDict.Load(_ema, TrainingRun.Part(state, "ema."), source);
        _opt.LoadState(TrainingRun.Part(state, "optim."), source);
        if (_disc != null)
        {
            StateDict.Load(_disc, TrainingRun.Part(state, "discriminator."), source);
            _discOpt!.LoadState(TrainingRun.Part(state, "discriminator_optim."), source);
        }
    }

    IEnumerable<(string name, Tensor weight)> ITrainable.Weights() =>
        _model.named_parameters().Select(p => (p.name, (Tensor)p.parameter))
            .Concat(_disc?.named_parameters().Select(p => ("discriminator." + p.name, (Tensor)p.parameter)) ?? []);

    void ITrainable.PublishModel(string? runDir, long step, bool finished)
    {
        if (!finished) return;
        _ema.LatentScale = MeasureLatentScale();
        if (runDir is null) return;
        _ema.Save(Path.Combine(runDir, ModelFile), extra: new Dictionary<string, string> { ["ldm.train.step"] = step.ToString(CultureInfo.InvariantCulture) });
    }

    /// <summary>Frees the models, the discriminator and the optimizer state.</summary>
    public void Dispose()
    {
        _run?.Dispose();
        _model.Dispose(); _ema.Dispose(); _disc?.Dispose();
        _opt.Dispose(); _discOpt?.Dispose();
    }
}
