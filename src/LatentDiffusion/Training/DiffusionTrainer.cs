using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using LatentDiffusion.Denoisers;
using LatentDiffusion.Diffusion;
using LatentDiffusion.Distributed;
using LatentDiffusion.IO;
using LatentDiffusion.Text;
using LatentDiffusion.Transformers;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Training;

/// <summary>
/// Trains a denoiser of any backbone (the diffusion Transformer, the LDM UNet) with DiT's recipe: uniform timesteps, the diffusion's training loss (ε-MSE, plus the
/// VB term when sigma is learned), AdamW, EMA of weights. A run directory holds:
/// <list type="bullet">
/// <item><c>checkpoint.safetensors</c>: model, EMA and optimizer state and the step (for exact resume),</item>
/// <item><c>model.safetensors</c>: the EMA weights as a standalone denoiser checkpoint (for sampling),</item>
/// <item><c>metrics.jsonl</c>: step, loss, learning rate, throughput.</item>
/// </list>
/// A run folder that already holds a checkpoint is resumed, provided it asks for the same settings (a larger
/// <see cref="DiffusionTrainingOptions.Steps"/> continues a finished run); without a run folder (null) nothing is written.
/// Every random draw of step s comes from a generator seeded by (seed, s), and the data order is a function of
/// (seed, step), so a run resumed from its checkpoint (even after kill -9) continues the same loss curve.
/// A text model (config <c>text</c>) trains on the data's captions, tokenized with <see cref="DenoiserInfo.Tokenizer"/>;
/// each caption becomes the empty caption with probability text.dropout_prob, drawn from the step's generator.
/// <para>Data parallel: given a <see cref="IProcessGroup"/> of N ranks, every rank makes the step's draws for the whole
/// global batch of <see cref="DiffusionTrainingOptions.BatchSize"/> (data, timesteps, noise, label or caption dropout)
/// exactly as one process would, then trains on its rows (rank r: rows B·r/N to B·(r+1)/N); the gradients are averaged
/// over the ranks (<see cref="GradientAverager"/>) before clipping and the optimizer, so every rank applies the update
/// of the global batch and holds the same weights. The logged loss is the global batch's. Rank 0 alone writes the run
/// folder; the other ranks take its state at the start (<see cref="TrainingRun.FollowMain"/>).</para>
/// </summary>
public sealed class DiffusionTrainer : ITrainable, IDisposable
{
    /// <summary>File names in a run folder: the resumable state, the EMA model to sample from, the metrics log.</summary>
    public const string CheckpointFile = TrainingRun.CheckpointFile, ModelFile = "model.safetensors", MetricsFile = TrainingRun.MetricsFile;
    /// <summary>Options that may change between a run and its resume (they do not change the curve). The dtype is a
    /// speed setting (auto may resolve differently on the machine a run resumes on); "Bf16" is its name in runs written before Dtype.</summary>
    static readonly string[] ResumableOptions = [nameof(DiffusionTrainingOptions.Steps), nameof(DiffusionTrainingOptions.LogEvery),
        nameof(DiffusionTrainingOptions.CheckpointEvery), nameof(DiffusionTrainingOptions.SampleEvery), nameof(DiffusionTrainingOptions.Dtype), "Bf16",
        nameof(DiffusionTrainingOptions.AllowChangedSettings)];
    const string Advice = "Lower LearningRate, set GradClip to 1, or train in float32 (Dtype).";

    readonly DenoiserNetwork _model, _ema;
    readonly MixedPrecision? _mixed;
    readonly FlatParameters _emaLayout;
    readonly AdamW _optimizer;
    readonly GaussianDiffusion _diffusion;
    readonly TimestepSampler _timesteps;
    readonly ITrainingData _data;
    readonly DataOrder _order;
    readonly BatchPrefetcher _prefetcher;
    readonly TrainingRun _run;
    readonly RunSettings _settings;
    readonly IProcessGroup _group;
    readonly Shard _rows;
    readonly GradientAverager _gradients;

    /// <summary>What is trained: the architecture, the diffusion, the data space and the conditioning.</summary>
    public DenoiserInfo Info { get; }
    /// <summary>Where the networks train.</summary>
    public Device Device { get; }
    /// <summary>The settings of this run (validated).</summary>
    public DiffusionTrainingOptions Options { get; }
    /// <summary>The run folder, or null for a run in memory (and on every rank but 0).</summary>
    public string? RunDir => _run.RunDir;
    /// <summary>The ranks training together (<see cref="SingleProcess.Instance"/> for one process).</summary>
    public IProcessGroup Group => _group;
    /// <summary>Steps done so far.</summary>
    public long Step => _run.Step;
    /// <summary>The settings this resume changed (allowed by <see cref="DiffusionTrainingOptions.AllowChangedSettings"/>; old → new); empty for a new run or an unchanged resume.</summary>
    public IReadOnlyList<RunSettingChange> ChangedSettings => _run.ChangedSettings;
    /// <summary>The step of the checkpoint this run resumed from, or null for a new run.</summary>
    public long? ResumedFromStep => _run.ResumedFromStep;
    /// <summary>The run has reached <see cref="DiffusionTrainingOptions.Steps"/>; <see cref="Run"/> does nothing, a larger Steps continues it.</summary>
    public bool IsFinished => _run.IsFinished;
    /// <summary>The metrics entries logged by this trainer (also in <c>metrics.jsonl</c> of a run folder).</summary>
    public IReadOnlyList<IReadOnlyDictionary<string, object>> Metrics => _run.Metrics;
    /// <summary>The EMA of the weights: the model to sample from, and the one saved as <see cref="ModelFile"/>.</summary>
    public DenoiserNetwork EmaModel => _ema;
    /// <summary>The model being optimized (float32 master weights).</summary>
    public DenoiserNetwork Model => _model;
    /// <summary>The dtype of the forward and backward passes: <see cref="DiffusionTrainingOptions.Dtype"/> resolved on
    /// <see cref="Device"/> (BFloat16 = mixed precision with float32 master weights).</summary>
    public ScalarType ComputeDtype { get; }
    /// <summary>When set, every step records where its time went (data, forward, backward, optimizer, EMA); null times nothing.</summary>
    public StepTimings? Timings { get; set; }

    /// <summary>Called with the EMA model whenever a sample grid is due (step, model).</summary>
    public Action<long, DenoiserNetwork>? OnSample { get; set; }

    /// <summary>A new run, or the run saved in <paramref name="runDir"/> resumed; refuses a run folder holding another kind of run or other settings.</summary>
    /// <param name="info">The model to train: backbone config, diffusion, data space, class names or tokenizer.</param>
    /// <param name="data">The training examples, in the model's data space; the caller keeps ownership.</param>
    /// <param name="options">The run's settings.</param>
    /// <param name="runDir">The run folder, or null to train in memory without writing files.</param>
    /// <param name="device">Where the networks train (default: the CPU). Every random draw is made on the CPU, so a seed
    /// gives the same draws on any device; a run may resume on another device.</param>
    /// <param name="group">The ranks training together, each on its share of every batch (default: this process alone).
    /// Every rank passes the same arguments; only rank 0 writes to <paramref name="runDir"/>.</param>
    public DiffusionTrainer(DenoiserInfo info, ITrainingData data, DiffusionTrainingOptions options, string? runDir, Device? device = null,
        IProcessGroup? group = null)
    {
        Device = device ?? torch.CPU;
        options.Validate();
        _group = group ?? SingleProcess.Instance;
        if (options.BatchSize % _group.Size != 0)
            throw new LdmException($"the batch size {options.BatchSize} (--batch-size) does not divide among {_group.Size} ranks; give a multiple of {_group.Size}.");
        _rows = Shard.Of(options.BatchSize, _group.Rank, _group.Size);
        if (data.Count < 1) throw new LdmException("the training data is empty; give a data set with images.");
        Info = info; Options = options; _data = data;
        info.Check("the training setup");
        _diffusion = new GaussianDiffusion(info.Diffusion);
        _timesteps = new TimestepSampler(_diffusion);
        _order = new DataOrder(data.Count, options.Seed);
        _prefetcher = new BatchPrefetcher(LoadBatch);
        _model = info.Backbone.Build(seed: options.Seed);
        _ema = info.Backbone.Build(seed: options.Seed);
        _model.to(Device);
        _ema.to(Device);
        Ema.CopyFrom(_ema, _model);
        _ema.eval();
        foreach (var p in _ema.parameters()) p.requires_grad = false;
        _optimizer = AdamW.For(_model, options.LearningRate, options.WeightDecay);
        _emaLayout = FlatParameters.Of(_ema, _optimizer.Parameters.Names);
        if (info.Backbone.Text is not null)
        {
            if (data.AllCaptions is null)
                throw new LdmException("a text model needs captions, but the training data has none; use the shapes-text data set or a folder with a metadata.jsonl holding \"text\" captions.");
        }
        ComputeDtype = options.Dtype.Resolve(Device);
        if (ComputeDtype == ScalarType.BFloat16) _mixed = new MixedPrecision(_optimizer.Parameters, info.Backbone.Build().to(Device));
        _settings = new RunSettings().Add(JsonNode.Parse(info.Backbone.ToJson())).Add(JsonSerializer.SerializeToNode(info.Diffusion), "diffusion.")
            .AddOptions(options, ResumableOptions).Record("compute_dtype", ComputeDtype == ScalarType.BFloat16 ? "bf16" : "float32")
            .AddSinceLaterVersion(RunSettingChange.DataCount, JsonValue.Create(data.Count));
        _gradients = new GradientAverager(_optimizer.Parameters.Gradients, _group);
        try
        {
            _run = new TrainingRun(this, new TrainingSchedule(options.Steps, options.LearningRate, options.WarmupSteps, options.LogEvery, options.CheckpointEvery),
                _group.IsMain ? runDir : null, Advice, _group);
            _run.FollowMain();
        }
        catch { Dispose(); throw; }
    }

    /// <summary>Trains until <see cref="DiffusionTrainingOptions.Steps"/>; checkpoints on schedule, at the end and when cancelled.</summary>
    public void Run(Action<TrainingProgress>? onProgress = null, CancellationToken cancel = default) =>
        _run.Run(onProgress, cancel, step =>
        {
            if (_group.IsMain && ((Options.SampleEvery > 0 && step % Options.SampleEvery == 0) || step == Options.Steps)) OnSample?.Invoke(step, _ema);
        });

    /// <summary>Runs <paramref name="count"/> optimisation steps without checkpoints (benchmarks).</summary>
    public void RunSteps(int count)
    {
        for (int i = 0; i < count; i++) _run.StepOnce();
    }

    /// <summary>Writes checkpoint.safetensors (resume state) and model.safetensors (EMA, for sampling), each atomically.</summary>
    public void SaveCheckpoint() => _run.SaveCheckpoint();

    /// <summary>
    /// The examples of a step (run on the prefetch thread): indices from the data order, augmentation and posterior
    /// draws from the step's generator, seeded by (seed, step); the batch carries that generator on to the step's
    /// timestep, noise and dropout draws, so every number is as if the step had done it all itself.
    /// </summary>
    TrainingBatch LoadBatch(long step)
    {
        var indices = _order.IndicesForStep(step, Options.BatchSize);
        var generator = new Generator(StepSeeds.Mix(Options.Seed, step));
        try
        {
            var (x, labels) = _data.GetBatch(indices, generator, Options.HorizontalFlip);
            return new TrainingBatch(indices, x, labels, generator);
        }
        catch
        {
            generator.Dispose();
            throw;
        }
    }

    /// <summary>One optimisation step; returns the mean loss of the batch.</summary>
    IReadOnlyDictionary<string, double> ITrainable.TrainStep(long step, double lr) => new Dictionary<string, double> { ["loss"] = TrainStep(step, lr) };

    /// <summary>This rank's rows of a global-batch tensor (all of it for one process).</summary>
    Tensor Mine(Tensor global) => global.narrow(0, _rows.Start, _rows.Count);

    double TrainStep(long step, double lr)
    {
        using var scope = torch.NewDisposeScope();
        var lap = Timings?.Begin();
        using var batch = _prefetcher.Take(step);
        var (indices, generator) = (batch.Indices, batch.Generator!);
        // Every draw is made for the global batch, in the order of a single process; then this rank keeps its rows.
        var x0 = Mine(batch.X).to(Device);
        var labels = batch.Labels is null ? null : Mine(batch.Labels).to(Device);
        var (t, _) = _timesteps.Sample(Options.BatchSize, generator, Device);
        t = Mine(t);
        var noise = Mine(torch.randn(batch.X.shape, generator: generator, device: torch.CPU)).to(Device);

        lap?.End(StepPhase.Data);
        var net = _mixed != null ? (DenoiserNetwork)_mixed.Compute : _model;
        _mixed?.SyncWeights();
        lap?.End(StepPhase.Optimizer);
        net.train();
        try
        {
            Denoiser denoiser;
            if (Info.Backbone.Text is { } text)
            {
                // Captions are tokenized per step (cheap) and dropped to the empty caption after the noise draws.
                var captions = _data.GetCaptions(indices) ?? new string?[indices.Length];
                var tokens = TokenBatch.Encode(Info.TextTokenizer, captions, text.MaxTokens, Device);
                var (kept, _) = CaptionDropout.Apply(tokens, text.DropoutProb, Info.TextTokenizer.PadId, generator);
                var (ids, mask) = (Mine(kept.Ids), Mine(kept.Mask));
                denoiser = (x, tt) => net.ForwardText(x, tt, ids, mask);
            }
            else
            {
                // The draw the model would make from the generator (the step's last), for the global batch.
                net.LabelDropoutDraws = Mine(torch.rand(new[] { (long)Options.BatchSize }, device: torch.CPU, generator: generator));
                denoiser = (x, tt) => net.forward(x, tt, labels);
            }
            var losses = _diffusion.TrainingLosses(denoiser, x0, t, noise);
            var loss = losses.Loss.mean();
            // The global batch's loss: the mean of the ranks' equal shares (every rank sees the same value, so all of
            // them take the same branch below).
            var globalLoss = loss.detach().to(ScalarType.Float32, torch.CPU).clone();
            _group.AllReduceMean(globalLoss);
            double value = globalLoss.item<float>();
            if (!double.IsFinite(value)) return value;
            lap?.End(StepPhase.Forward);
            _optimizer.ZeroGrad();
            loss.backward();
            lap?.End(StepPhase.Backward);
            _mixed?.CopyGradientsToMaster();
            _gradients.AllReduceMean();
            if (Options.GradClip > 0)
                torch.nn.utils.clip_grad_norm_(_model.parameters(), Options.GradClip);
            _optimizer.LearningRate = lr;
            _optimizer.StepOnce();
            lap?.End(StepPhase.Optimizer);
            Ema.Update(_emaLayout, _optimizer.Parameters, Ema.DecayAt(Options.EmaDecay, step));
            lap?.End(StepPhase.Ema);
            return value;
        }
        finally
        {
            // The draws are disposed when this step ends; the model must not keep a reference to them.
            net.LabelDropoutDraws = null;
        }
    }

    // ---- ITrainable: what the run saves, restores and checks ----

    // Transformer runs keep the kind their run folders were written with.
    string ITrainable.Kind => Info.Backbone is TransformerConfig ? "diffusion-transformer" : $"diffusion-{Info.Backbone.Kind}";
    RunSettings ITrainable.Settings => _settings;
    bool ITrainable.AllowChangedSettings => Options.AllowChangedSettings;

    IReadOnlyDictionary<string, string> ITrainable.CheckpointMetadata
    {
        get
        {
            var meta = new Dictionary<string, string>
            {
                ["ldm.train.model"] = Info.Backbone.ToJson(),
                ["ldm.train.options"] = JsonSerializer.Serialize(Options),
                [ModelCheckpoint.ConfigKey] = DenoiserCheckpoint.ToJson(Info).ToJsonString(),
            };
            foreach (var (k, v) in DenoiserCheckpoint.Metadata(Info)) meta[k] = v;
            return meta;
        }
    }

    IReadOnlyDictionary<string, Tensor> ITrainable.StateTensors()
    {
        var tensors = new Dictionary<string, Tensor>();
        foreach (var (k, v) in _model.state_dict()) tensors["model." + k] = v;
        foreach (var (k, v) in _ema.state_dict()) tensors["ema." + k] = v;
        foreach (var (k, v) in _optimizer.StateTensors()) tensors["optim." + k] = v;
        return tensors;
    }

    void ITrainable.LoadState(IReadOnlyDictionary<string, Tensor> state, string source)
    {
        StateDict.Load(_model, TrainingRun.Part(state, "model."), source);
        StateDict.Load(_ema, TrainingRun.Part(state, "ema."), source);
        _optimizer.LoadState(TrainingRun.Part(state, "optim."), source);
    }

    IEnumerable<(string name, Tensor weight)> ITrainable.Weights() => _model.named_parameters().Select(p => (p.name, (Tensor)p.parameter));

    void ITrainable.PublishModel(string? runDir, long step, bool finished)
    {
        if (runDir is null) return;
        DenoiserCheckpoint.Save(Path.Combine(runDir, ModelFile), _ema, Info,
            extra: new Dictionary<string, string> { ["ldm.train.step"] = step.ToString(CultureInfo.InvariantCulture) });
    }

    /// <summary>Stops the batch prefetching and frees the models and optimizer state.</summary>
    public void Dispose()
    {
        _run?.Dispose();
        _prefetcher.Dispose();
        _optimizer.Dispose();
        _emaLayout?.Dispose();
        _mixed?.Dispose();
        _model.Dispose();
        _ema.Dispose();
    }
}
