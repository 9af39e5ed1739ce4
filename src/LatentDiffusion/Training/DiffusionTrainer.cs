using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using LatentDiffusion.Denoisers;
using LatentDiffusion.Diffusion;
using LatentDiffusion.IO;
using LatentDiffusion.Text;
using LatentDiffusion.Transformers;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Training;

/// <summary>Progress of a run, reported after every step.</summary>
public sealed record TrainingProgress(long Step, long TotalSteps, double Loss, double StepsPerSecond, double LearningRate);

/// <summary>
/// Trains a diffusion Transformer with DiT's recipe: uniform timesteps, the diffusion's training loss (ε-MSE, plus the
/// VB term when sigma is learned), AdamW, EMA of weights. A run directory holds:
/// <list type="bullet">
/// <item><c>checkpoint.safetensors</c>: model, EMA and optimizer state and the step (for exact resume),</item>
/// <item><c>model.safetensors</c>: the EMA weights as a standalone denoiser checkpoint (for sampling),</item>
/// <item><c>metrics.jsonl</c>: step, loss, learning rate, throughput.</item>
/// </list>
/// Every random draw of step s comes from a generator seeded by (seed, s), and the data order is a function of
/// (seed, step), so a run resumed from its checkpoint (even after kill -9) continues the same loss curve.
/// A text model (config <c>text</c>) trains on the data's captions, tokenized with <see cref="DenoiserInfo.Tokenizer"/>;
/// each caption becomes the empty caption with probability text.dropout_prob, drawn from the step's generator.
/// </summary>
public sealed class DiffusionTrainer : IDisposable
{
    public const string CheckpointFile = "checkpoint.safetensors", ModelFile = "model.safetensors", MetricsFile = "metrics.jsonl";

    readonly DiffusionTransformer _model, _ema;
    readonly MixedPrecision? _mixed;
    readonly AdamW _optimizer;
    readonly GaussianDiffusion _diffusion;
    readonly TimestepSampler _timesteps;
    readonly ITrainingData _data;
    readonly DataOrder _order;
    readonly BatchPrefetcher _prefetcher;

    public DenoiserInfo Info { get; }
    public DiffusionTrainingOptions Options { get; }
    public string RunDir { get; }
    public long Step { get; private set; }
    public DiffusionTransformer EmaModel => _ema;
    public DiffusionTransformer Model => _model;

    /// <summary>Called with the EMA model whenever a sample grid is due (step, model).</summary>
    public Action<long, DiffusionTransformer>? OnSample { get; set; }

    public DiffusionTrainer(DenoiserInfo info, ITrainingData data, DiffusionTrainingOptions options, string runDir)
    {
        options.Validate();
        if (data.Count < 1) throw new LdmException("the training data is empty; point --data at a data set with images.");
        Info = info; Options = options; RunDir = runDir; _data = data;
        info.Check("the training setup");
        _diffusion = new GaussianDiffusion(info.Diffusion);
        _timesteps = new TimestepSampler(_diffusion);
        _order = new DataOrder(data.Count, options.Seed);
        _prefetcher = new BatchPrefetcher(LoadBatch);
        _model = new DiffusionTransformer(info.Transformer, seed: options.Seed);
        _ema = new DiffusionTransformer(info.Transformer, seed: options.Seed);
        Ema.CopyFrom(_ema, _model);
        _ema.eval();
        foreach (var p in _ema.parameters()) p.requires_grad = false;
        _optimizer = AdamW.For(_model, options.LearningRate, options.WeightDecay);
        if (info.Transformer.IsTextConditional)
        {
            if (data.AllCaptions is null)
                throw new LdmException("a text model needs captions, but the training data has none; use --data shapes-text or a folder with a metadata.jsonl holding \"text\" captions.");
        }
        if (options.Bf16) _mixed = new MixedPrecision(_model, new DiffusionTransformer(info.Transformer));
        Directory.CreateDirectory(runDir);
        TryResume();
    }

    void TryResume()
    {
        string path = Path.Combine(RunDir, CheckpointFile);
        if (!File.Exists(path)) return;
        using var file = SafetensorsFile.Open(path);
        if (!file.Metadata.TryGetValue("ldm.train.step", out var stepText))
            throw new LdmException($"'{path}' is not a training checkpoint of ldm; choose an empty --out folder for a new run.");
        var saved = file.Metadata.GetValueOrDefault("ldm.train.model", "");
        if (saved != Info.Transformer.ToJson())
            throw new LdmException($"the run in '{RunDir}' was started with another model config; resume with the same settings or choose a new --out folder.");
        using var scope = torch.NewDisposeScope();
        var all = file.ReadAll();
        Dictionary<string, Tensor> Part(string prefix) =>
            all.Where(kv => kv.Key.StartsWith(prefix, StringComparison.Ordinal)).ToDictionary(kv => kv.Key[prefix.Length..], kv => kv.Value);
        StateDict.Load(_model, Part("model."), path);
        StateDict.Load(_ema, Part("ema."), path);
        _optimizer.LoadState(Part("optim."), path);
        Step = long.Parse(stepText, CultureInfo.InvariantCulture);
    }

    /// <summary>Trains until <see cref="DiffusionTrainingOptions.Steps"/>; checkpoints on schedule and at the end.</summary>
    public void Run(Action<TrainingProgress>? onProgress = null, CancellationToken cancel = default)
    {
        using var log = new MetricsLog(Path.Combine(RunDir, MetricsFile), Step);
        var clock = Stopwatch.StartNew();
        long stepsTimed = 0;
        double lossSum = 0; int lossCount = 0;
        while (Step < Options.Steps && !cancel.IsCancellationRequested)
        {
            double lr = LearningRateAt(Step);
            double loss = TrainStep(Step, lr);
            if (!double.IsFinite(loss))
                throw new LdmException($"the loss became {loss} at step {Step + 1}; training stopped and the last good checkpoint in '{RunDir}' is kept. Lower --lr, add --grad-clip 1, or use float32.");
            Step++;
            stepsTimed++;
            lossSum += loss; lossCount++;
            double sps = stepsTimed / Math.Max(1e-9, clock.Elapsed.TotalSeconds);
            onProgress?.Invoke(new TrainingProgress(Step, Options.Steps, loss, sps, lr));
            if (Step % Options.LogEvery == 0 || Step == Options.Steps)
            {
                log.Write(new Dictionary<string, object>
                {
                    ["step"] = Step, ["loss"] = lossSum / lossCount, ["lr"] = lr, ["steps_per_sec"] = Math.Round(sps, 4),
                    ["time"] = DateTime.UtcNow.ToString("O"),
                });
                lossSum = 0; lossCount = 0;
            }
            if (Step % Options.CheckpointEvery == 0 || Step == Options.Steps) SaveCheckpoint();
            if ((Options.SampleEvery > 0 && Step % Options.SampleEvery == 0) || Step == Options.Steps) OnSample?.Invoke(Step, _ema);
        }
    }

    /// <summary>Runs <paramref name="count"/> optimisation steps without logging or checkpoints (benchmarks).</summary>
    public void RunSteps(int count)
    {
        for (int i = 0; i < count; i++)
        {
            TrainStep(Step, LearningRateAt(Step));
            Step++;
        }
    }

    double LearningRateAt(long step) =>
        Options.WarmupSteps > 0 ? Options.LearningRate * Math.Min(1.0, (step + 1.0) / Options.WarmupSteps) : Options.LearningRate;

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
    double TrainStep(long step, double lr)
    {
        using var scope = torch.NewDisposeScope();
        using var batch = _prefetcher.Take(step);
        var (indices, x0, labels, generator) = (batch.Indices, batch.X, batch.Labels, batch.Generator!);
        var (t, _) = _timesteps.Sample(Options.BatchSize, generator);
        var noise = torch.randn(x0.shape, generator: generator);

        var net = _mixed != null ? (DiffusionTransformer)_mixed.Compute : _model;
        _mixed?.SyncWeights();
        net.train();
        try
        {
            Denoiser denoiser;
            if (Info.Transformer.Text is { } text)
            {
                // Captions are tokenized per step (cheap) and dropped to the empty caption after the noise draws.
                var captions = _data.GetCaptions(indices) ?? new string?[indices.Length];
                var tokens = TokenBatch.Encode(Info.TextTokenizer, captions, text.MaxTokens);
                var (kept, _) = CaptionDropout.Apply(tokens, text.DropoutProb, Info.TextTokenizer.PadId, generator);
                denoiser = (x, tt) => net.ForwardText(x, tt, kept.Ids, kept.Mask);
            }
            else
            {
                net.LabelDropoutGenerator = generator;
                denoiser = (x, tt) => net.forward(x, tt, labels);
            }
            var losses = _diffusion.TrainingLosses(denoiser, x0, t, noise);
            var loss = losses.Loss.mean();
            double value = loss.item<float>();
            if (!double.IsFinite(value)) return value;
            _optimizer.ZeroGrad();
            loss.backward();
            _mixed?.CopyGradientsToMaster();
            if (Options.GradClip > 0)
                torch.nn.utils.clip_grad_norm_(_model.parameters(), Options.GradClip);
            _optimizer.LearningRate = lr;
            _optimizer.StepOnce();
            Ema.Update(_ema, _model, Ema.DecayAt(Options.EmaDecay, step));
            return value;
        }
        finally
        {
            // The generator is disposed when this step ends; the model must not keep a reference to it.
            net.LabelDropoutGenerator = null;
        }
    }

    /// <summary>Writes checkpoint.safetensors (resume state) and model.safetensors (EMA, for sampling), each atomically.</summary>
    public void SaveCheckpoint()
    {
        using var scope = torch.NewDisposeScope();
        // A finite loss does not prove finite weights (a NaN gradient passes through AdamW into them); never replace the
        // last good checkpoint with weights nobody can resume from or sample.
        foreach (var (name, p) in _model.named_parameters())
            if (!p.isfinite().all().item<bool>())
                throw new LdmException($"the weight '{name}' became non-finite by step {Step}; training stopped and the last good checkpoint in '{RunDir}' is kept. Lower --lr, add --grad-clip 1, or use float32.");
        var tensors = new Dictionary<string, Tensor>();
        foreach (var (k, v) in _model.state_dict()) tensors["model." + k] = v;
        foreach (var (k, v) in _ema.state_dict()) tensors["ema." + k] = v;
        foreach (var (k, v) in _optimizer.StateTensors()) tensors["optim." + k] = v;
        var meta = new Dictionary<string, string>
        {
            ["ldm.train.step"] = Step.ToString(CultureInfo.InvariantCulture),
            ["ldm.train.model"] = Info.Transformer.ToJson(),
            ["ldm.train.options"] = JsonSerializer.Serialize(Options),
            [ModelCheckpoint.ConfigKey] = DenoiserCheckpoint.ToJson(Info).ToJsonString(),
        };
        foreach (var (k, v) in DenoiserCheckpoint.Metadata(Info)) meta[k] = v;
        SafetensorsWriter.Write(Path.Combine(RunDir, CheckpointFile), tensors, meta);
        DenoiserCheckpoint.Save(Path.Combine(RunDir, ModelFile), _ema, Info,
            extra: new Dictionary<string, string> { ["ldm.train.step"] = Step.ToString(CultureInfo.InvariantCulture) });
    }

    public void Dispose()
    {
        _prefetcher.Dispose();
        _optimizer.Dispose();
        _mixed?.Dispose();
        _model.Dispose();
        _ema.Dispose();
    }
}
