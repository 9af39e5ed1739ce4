using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using LatentDiffusion.Autoencoders;
using LatentDiffusion.Data;
using LatentDiffusion.IO;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LatentDiffusion.Training;

/// <summary>
/// Trains a KL autoencoder on an image data set (see <see cref="AutoencoderTrainingOptions"/> for the loss) with AdamW,
/// an EMA of the weights, reconstruction grids, and checkpoints that resume exactly.
/// <para>Run folder: <c>train_state.safetensors</c> (model, EMA, discriminator, optimizer states, step, options: all a
/// resume needs, one file written atomically), <c>autoencoder.safetensors</c> (the EMA model as an ldm checkpoint with
/// its measured latent scale: the file to use), <c>metrics.jsonl</c>, <c>samples/recon_XXXXXX.png</c> (top: inputs,
/// bottom: EMA reconstructions).</para>
/// <para>Randomness: the data order of epoch e, the flips and posterior samples of step s and the global torch seed
/// (for dropout) all derive from (seed, e) or (seed, s), so the step number is the whole random state and a resumed run
/// repeats the uninterrupted run's losses exactly.</para>
/// </summary>
public sealed class AutoencoderTrainer : IDisposable
{
    public const string StateFile = "train_state.safetensors", ModelFile = "autoencoder.safetensors", MetricsFile = "metrics.jsonl";
    const string StepKey = "ldm.train.step", OptionsKey = "ldm.train.options", KindKey = "ldm.train.kind", Kind = "autoencoder-kl-training";

    readonly ImageDataset _data;
    readonly AutoencoderKL _model, _ema;
    readonly NLayerDiscriminator? _disc;
    readonly TorchSharp.Modules.AdamW _opt;
    readonly TorchSharp.Modules.AdamW? _discOpt;
    readonly List<string> _pendingMetrics = new();
    long _epochCached = -1;
    long[] _epochOrder = [];

    public AutoencoderTrainingOptions Options { get; }
    public string RunDir { get; }
    /// <summary>Steps done so far.</summary>
    public int Step { get; private set; }
    /// <summary>The model being trained.</summary>
    public AutoencoderKL Model => _model;
    /// <summary>The EMA of the weights: what is evaluated and saved.</summary>
    public AutoencoderKL Ema => _ema;

    /// <summary>Starts a new run in <paramref name="runDir"/> (which must not hold a training state already).</summary>
    public AutoencoderTrainer(AutoencoderConfig config, ImageDataset data, AutoencoderTrainingOptions options, string runDir)
        : this(config, data, options, runDir, fresh: true) { }

    AutoencoderTrainer(AutoencoderConfig config, ImageDataset data, AutoencoderTrainingOptions options, string runDir, bool fresh)
    {
        options.Validate();
        config.Validate();
        if (data.Count == 0) throw new LdmException($"the data set '{data.Source}' is empty; give a folder or data set with images.");
        if (data.Channels != config.InChannels)
            throw new LdmException($"the data has {data.Channels}-channel images but the autoencoder takes {config.InChannels}; choose a config with in_channels = out_ch = {data.Channels}.");
        if (data.ImageSize % config.DownsampleFactor != 0)
            throw new LdmException($"image size {data.ImageSize} is not divisible by the autoencoder's factor {config.DownsampleFactor}; resize the images or use fewer levels.");
        if (fresh && File.Exists(Path.Combine(runDir, StateFile)))
            throw new LdmException($"'{runDir}' already holds a training run; pass --resume to continue it or choose another --out folder.");
        Options = options;
        RunDir = runDir;
        _data = data;

        _model = new AutoencoderKL(config);
        _model.ResetParameters(new Generator(StreamSeed(options.Seed, 6, 0)));
        _ema = new AutoencoderKL(config);
        Training.Ema.CopyFrom(_ema, _model);
        _ema.eval();
        foreach (var p in _ema.parameters()) p.requires_grad = false;
        _opt = torch.optim.AdamW(_model.parameters(), options.LearningRate, options.Beta1, options.Beta2, weight_decay: options.WeightDecay);
        if (options.DiscriminatorStart is not null)
        {
            _disc = new NLayerDiscriminator(config.OutCh, options.DiscriminatorChannels, options.DiscriminatorLayers, new Generator(StreamSeed(options.Seed, 3, 0)));
            _discOpt = torch.optim.AdamW(_disc.parameters(), options.LearningRate, options.Beta1, options.Beta2, weight_decay: options.WeightDecay);
        }
    }

    /// <summary>Continues the run saved in <paramref name="runDir"/>; <paramref name="steps"/> (if given) replaces the
    /// planned number of steps (to train longer).</summary>
    public static AutoencoderTrainer Resume(string runDir, ImageDataset data, int? steps = null)
    {
        string path = Path.Combine(runDir, StateFile);
        if (!File.Exists(path)) throw new LdmException($"'{runDir}' has no {StateFile} to resume from; start a new run without --resume.");
        using var file = SafetensorsFile.Open(path);
        if (!file.Metadata.TryGetValue(KindKey, out var kind) || kind != Kind)
            throw new LdmException($"'{path}' is not an autoencoder training state; resume it with the command that made it.");
        var options = JsonSerializer.Deserialize<AutoencoderTrainingOptions>(file.Metadata[OptionsKey], ModelCheckpoint.JsonOptions)!;
        if (steps is int s) options = options with { Steps = s };
        var config = AutoencoderConfig.FromJson(JsonNode.Parse(file.Metadata[ModelCheckpoint.ConfigKey])!.AsObject());
        var trainer = new AutoencoderTrainer(config, data, options, runDir, fresh: false);
        try { trainer.LoadState(file); }
        catch { trainer.Dispose(); throw; }
        return trainer;
    }

    /// <summary>Trains until <see cref="AutoencoderTrainingOptions.Steps"/>, checkpointing and writing grids on the way;
    /// ends with a checkpoint and the final model (with its measured latent scale). Returns the last step's result.</summary>
    public AutoencoderStepResult? Run(Action<AutoencoderStepResult>? onStep = null, CancellationToken cancel = default)
    {
        AutoencoderStepResult? last = null;
        while (Step < Options.Steps && !cancel.IsCancellationRequested)
        {
            last = TrainStep();
            onStep?.Invoke(last);
            if (Options.SampleEvery > 0 && Step % Options.SampleEvery == 0) SaveReconstructionGrid();
            if (Step % Options.CheckpointEvery == 0 && Step < Options.Steps) SaveCheckpoint();
        }
        SaveCheckpoint();
        SaveModel(MeasureLatentScale());
        return last;
    }

    /// <summary>One optimizer step (autoencoder, then discriminator once it is on).</summary>
    public AutoencoderStepResult TrainStep()
    {
        using var scope = torch.NewDisposeScope();
        var sw = Stopwatch.StartNew();
        torch.manual_seed((long)(StreamSeed(Options.Seed, 4, Step) >> 1)); // dropout, if any
        _model.train();
        using var batch = _data.GetBatch(BatchIndices(Step), Options.HorizontalFlip ? new Generator(StreamSeed(Options.Seed, 1, Step)) : null);
        var x = batch.Images;
        long n = x.shape[0];
        var (rec, posterior) = _model.Reconstruct(x, samplePosterior: true, new Generator(StreamSeed(Options.Seed, 2, Step)));
        var absErr = (x - rec).abs();
        // LDM normalises by the batch only: per-image sums, so the KL weight means the same as in LDM's configs.
        var nll = absErr.sum() / n;
        var kl = posterior.Kl().sum() / n;
        var loss = nll + Options.KlWeight * kl;
        bool gan = _disc is not null && Step >= Options.DiscriminatorStart;
        double gValue = 0, dValue = 0, weight = 0;
        if (gan)
        {
            _disc!.train();
            var gLoss = -_disc.forward(rec).mean();
            weight = AdaptiveWeight(nll, gLoss) * Options.DiscriminatorWeight;
            loss = loss + weight * gLoss;
            gValue = gLoss.item<float>();
        }
        _opt.zero_grad();
        loss.backward();
        _opt.step();
        if (gan)
        {
            _discOpt!.zero_grad();
            var real = _disc!.forward(x.detach());
            var fake = _disc.forward(rec.detach());
            var dLoss = 0.5 * (nn.functional.relu(1.0 - real).mean() + nn.functional.relu(1.0 + fake).mean());
            dLoss.backward();
            _discOpt.step();
            dValue = dLoss.item<float>();
        }
        Training.Ema.Update(_ema, _model, Training.Ema.DecayAt(Options.EmaDecay, Step));
        Step++;
        var result = new AutoencoderStepResult(Step, absErr.mean().item<float>(), kl.item<float>(), loss.item<float>(), gValue, dValue, weight);
        if (!double.IsFinite(result.Loss) || !double.IsFinite(result.DiscriminatorLoss) || !double.IsFinite(result.AdaptiveWeight))
            throw new LdmException($"training diverged at step {Step} ({result}); lower --lr or resume from the last checkpoint with a smaller one.");
        _pendingMetrics.Add(JsonSerializer.Serialize(new
        {
            step = Step, l1 = result.L1, kl = result.Kl, loss = result.Loss, g_loss = gValue, d_loss = dValue, d_weight = weight,
            seconds = sw.Elapsed.TotalSeconds,
        }));
        return result;
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

    /// <summary>The data indices of a step's batch: a fresh permutation per epoch, consumed in order across epochs.</summary>
    long[] BatchIndices(int step)
    {
        long count = _data.Count;
        var idx = new long[Options.BatchSize];
        for (int i = 0; i < idx.Length; i++)
        {
            long g = (long)step * Options.BatchSize + i;
            long epoch = g / count;
            if (epoch != _epochCached)
            {
                using var perm = torch.randperm(count, generator: new Generator(StreamSeed(Options.Seed, 0, epoch)));
                _epochOrder = perm.data<long>().ToArray();
                _epochCached = epoch;
            }
            idx[i] = _epochOrder[g % count];
        }
        return idx;
    }

    /// <summary>A seed for random stream <paramref name="stream"/> at position <paramref name="index"/> (SplitMix64 mix).</summary>
    static ulong StreamSeed(int seed, int stream, long index)
    {
        ulong z = (ulong)(uint)seed * 0x9E3779B97F4A7C15UL ^ ((ulong)stream << 56) ^ (ulong)index;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return (z ^ (z >> 31)) & 0x7FFFFFFFFFFFFFFFUL;
    }

    /// <summary>Writes the complete training state (one file, atomically) and the metrics logged since the last one.</summary>
    public void SaveCheckpoint()
    {
        using var scope = torch.NewDisposeScope();
        var tensors = new Dictionary<string, Tensor>();
        foreach (var (k, v) in _model.state_dict()) tensors["model." + k] = v.detach();
        foreach (var (k, v) in _ema.state_dict()) tensors["ema." + k] = v.detach();
        tensors["optimizer.autoencoder"] = OptimizerBytes(_opt);
        if (_disc != null)
        {
            foreach (var (k, v) in _disc.state_dict()) tensors["discriminator." + k] = v.detach();
            tensors["optimizer.discriminator"] = OptimizerBytes(_discOpt!);
        }
        var meta = new Dictionary<string, string>
        {
            [KindKey] = Kind,
            [StepKey] = Step.ToString(CultureInfo.InvariantCulture),
            [OptionsKey] = JsonSerializer.Serialize(Options, ModelCheckpoint.JsonOptions),
            [ModelCheckpoint.ConfigKey] = _model.Config.ToJson().ToJsonString(),
        };
        // Metrics first: a crash between the two writes leaves extra log lines, which a resume trims (see LoadState).
        FlushMetrics();
        SafetensorsWriter.Write(Path.Combine(RunDir, StateFile), tensors, meta);
    }

    void FlushMetrics()
    {
        string path = Path.Combine(RunDir, MetricsFile);
        var lines = File.Exists(path) ? File.ReadAllLines(path).ToList() : new List<string>();
        lines.AddRange(_pendingMetrics);
        AtomicFile.WriteAllText(path, lines.Count == 0 ? "" : string.Join("\n", lines) + "\n");
        _pendingMetrics.Clear();
    }

    static Tensor OptimizerBytes(OptimizerHelper optimizer)
    {
        using var ms = new MemoryStream();
        using (var w = new BinaryWriter(ms, System.Text.Encoding.UTF8, leaveOpen: true)) optimizer.save_state_dict(w);
        return torch.tensor(ms.ToArray(), ScalarType.Byte);
    }

    static void LoadOptimizer(OptimizerHelper optimizer, Tensor bytes, string path)
    {
        using var ms = new MemoryStream(bytes.data<byte>().ToArray());
        using var r = new BinaryReader(ms);
        try { optimizer.load_state_dict(r); }
        catch (Exception e) when (e is ArgumentException or InvalidDataException or EndOfStreamException)
        {
            throw new LdmException($"the optimizer state in '{path}' does not fit the model ({e.Message}); the training state is damaged, start a new run.");
        }
    }

    void LoadState(SafetensorsFile file)
    {
        using var scope = torch.NewDisposeScope();
        var all = file.ReadAll();
        Dictionary<string, Tensor> Part(string prefix) =>
            all.Where(kv => kv.Key.StartsWith(prefix, StringComparison.Ordinal)).ToDictionary(kv => kv.Key[prefix.Length..], kv => kv.Value);
        StateDict.Load(_model, Part("model."), file.Path);
        StateDict.Load(_ema, Part("ema."), file.Path);
        LoadOptimizer(_opt, all["optimizer.autoencoder"], file.Path);
        if (_disc != null)
        {
            StateDict.Load(_disc, Part("discriminator."), file.Path);
            LoadOptimizer(_discOpt!, all["optimizer.discriminator"], file.Path);
        }
        Step = int.Parse(file.Metadata[StepKey], CultureInfo.InvariantCulture);
        // Drop log lines of steps after the saved state (written before a crash): they will be redone.
        string metrics = Path.Combine(RunDir, MetricsFile);
        if (File.Exists(metrics))
        {
            var kept = File.ReadAllLines(metrics).Where(l => l.Length > 0 && JsonNode.Parse(l)?["step"]?.GetValue<int>() <= Step).ToList();
            AtomicFile.WriteAllText(metrics, kept.Count == 0 ? "" : string.Join("\n", kept) + "\n");
        }
    }

    /// <summary>Writes <c>samples/recon_{step}.png</c>: the first (up to 8) images of the data set above their EMA reconstructions.</summary>
    public string SaveReconstructionGrid()
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        long k = Math.Min(8, _data.Count);
        using var batch = _data.GetBatch(Enumerable.Range(0, (int)k).Select(i => (long)i).ToArray());
        var rec = _ema.forward(batch.Images).clamp(-1, 1);
        string path = Path.Combine(RunDir, "samples", $"recon_{Step:D6}.png");
        ImageGrid.Save(path, torch.cat([batch.Images, rec], 0), (int)k);
        return path;
    }

    /// <summary>1 / std of posterior samples of the EMA model over the first <see cref="AutoencoderTrainingOptions.ScaleSamples"/>
    /// images (LDM's <c>scale_by_std</c>), so that scaled latents have unit variance for the diffusion model.</summary>
    public double MeasureLatentScale() => AutoencoderEvaluation.MeasureLatentScale(_ema, _data, Options.ScaleSamples, Options.BatchSize, StreamSeed(Options.Seed, 5, 0));

    /// <summary>Saves the EMA model with the given latent scale as <c>autoencoder.safetensors</c> in the run folder.</summary>
    public string SaveModel(double latentScale)
    {
        _ema.LatentScale = latentScale;
        string path = Path.Combine(RunDir, ModelFile);
        _ema.Save(path, extra: new Dictionary<string, string> { ["ldm.train.step"] = Step.ToString(CultureInfo.InvariantCulture) });
        return path;
    }

    public void Dispose()
    {
        _model.Dispose(); _ema.Dispose(); _disc?.Dispose();
        _opt.Dispose(); _discOpt?.Dispose();
    }
}
