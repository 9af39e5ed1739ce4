using System.Diagnostics;
using System.Globalization;
using LatentDiffusion.Distributed;
using LatentDiffusion.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Training;

/// <summary>
/// The training loop shared by every trainer: step count, learning-rate schedule, metrics log, checkpoints and resume.
/// The trainer (an <see cref="ITrainable"/>) supplies the models, the optimizer state and one step function.
/// <para>A run folder holds <c>checkpoint.safetensors</c> (the trainer's state, the step, the run's settings; written
/// atomically), <c>metrics.jsonl</c>, <c>status.json</c> after a run that failed or was cancelled (<see cref="RunStatus"/>)
/// and whatever model file the trainer publishes. When the folder already holds a
/// checkpoint the run resumes from it (<see cref="ResumedFromStep"/>), provided it asks for the same settings (or the
/// trainer allows changed ones, listed in <see cref="ChangedSettings"/>); a run
/// whose step budget is reached is <see cref="IsFinished"/> and a larger budget continues it. Without a run folder
/// (null) nothing is written and the metrics stay in <see cref="Metrics"/>.</para>
/// <para>In a group of several ranks (data-parallel training) only rank 0 is given the run folder: it alone reads the
/// checkpoint, writes files and logs; <see cref="FollowMain"/> then gives every rank rank 0's step and state. Each rank
/// stops on the same step for cancellation or divergence (the decisions are all-reduced), and the weights are compared
/// across ranks at every log step.</para>
/// </summary>
internal sealed class TrainingRun : IDisposable
{
    public const string CheckpointFile = "checkpoint.safetensors", MetricsFile = "metrics.jsonl";
    public const string StepKey = "ldm.train.step", KindKey = "ldm.train.kind", SettingsKey = "ldm.train.settings";
    /// <summary>The metrics of the log interval in progress at the checkpoint (<see cref="LogInterval"/>), so the first
    /// entry after a resume averages the same steps as in an uninterrupted run.</summary>
    public const string LogIntervalKey = "ldm.train.log_interval";
    /// <summary>The kind assumed for checkpoints written before the kind was recorded (only the diffusion trainer wrote them).</summary>
    const string UnrecordedKind = "diffusion-transformer";

    readonly ITrainable _trainee;
    readonly IProcessGroup _group;
    readonly string _divergenceAdvice;
    readonly MetricsLog _log;
    readonly Stopwatch _clock = new();
    /// <summary>Sums of the values of the steps since the last regular log entry (the entry written at the end of a
    /// run is not a boundary: a larger step budget continues the interval, as an uninterrupted run would).</summary>
    LogInterval _interval = new();
    long _stepsTimed, _lastCheckpoint;

    /// <summary>The run folder, or null for a run in memory.</summary>
    public string? RunDir { get; }
    public TrainingSchedule Schedule { get; }
    /// <summary>Steps done so far.</summary>
    public long Step { get; private set; }
    /// <summary>The step of the checkpoint this run resumed from, or null for a new run.</summary>
    public long? ResumedFromStep { get; }
    /// <summary>The settings this resume changed (allowed by <see cref="ITrainable.AllowChangedSettings"/>); empty for a new run or an unchanged resume.</summary>
    public IReadOnlyList<RunSettingChange> ChangedSettings { get; private set; } = [];
    /// <summary>The step budget is reached; a larger <see cref="TrainingSchedule.Steps"/> continues the run.</summary>
    public bool IsFinished => Step >= Schedule.Steps;
    /// <summary>The metrics entries logged by this object (the file may hold earlier ones).</summary>
    public IReadOnlyList<IReadOnlyDictionary<string, object>> Metrics => _log.Entries;
    /// <summary>Learning rate of the last step done.</summary>
    public double LearningRate { get; private set; }
    public double StepsPerSecond => _stepsTimed / Math.Max(1e-9, _clock.Elapsed.TotalSeconds);

    /// <param name="trainee">The trainer: its state, settings and step function.</param>
    /// <param name="schedule">Step budget, learning-rate schedule and logging/checkpoint intervals.</param>
    /// <param name="runDir">The run folder, or null for a run in memory.</param>
    /// <param name="divergenceAdvice">What to tell the user when the loss or a weight becomes non-finite.</param>
    /// <param name="group">The ranks training together (null: this process alone); pass <paramref name="runDir"/> on rank 0 only.</param>
    public TrainingRun(ITrainable trainee, TrainingSchedule schedule, string? runDir, string divergenceAdvice, IProcessGroup? group = null)
    {
        _trainee = trainee;
        _group = group ?? SingleProcess.Instance;
        Schedule = schedule;
        RunDir = runDir;
        _divergenceAdvice = divergenceAdvice;
        var folder = runDir is null ? null : RunFolder.Claim(runDir);
        try
        {
            if (runDir != null)
            {
                IO.WriteFailure.CreateFolder(runDir);
                ResumedFromStep = TryResume(runDir);
                Step = _lastCheckpoint = ResumedFromStep ?? 0;
            }
            // The log keeps the entries up to the start of the interval the checkpoint carries on: later ones (written
            // after the checkpoint, or the entry a finished run wrote at its end) are written again as the run goes on.
            _log = new MetricsLog(runDir is null ? null : Path.Combine(runDir, MetricsFile), Step - _interval.Steps);
        }
        catch
        {
            folder?.RemoveIfUnused();
            throw;
        }
    }

    long? TryResume(string runDir)
    {
        string path = Path.Combine(runDir, CheckpointFile);
        if (!File.Exists(path)) return null;
        using var file = SafetensorsFile.Open(path);
        if (!file.Metadata.TryGetValue(StepKey, out var stepText))
            throw new LdmException($"'{path}' is not a training checkpoint of ldm; choose an empty run folder for a new run.");
        string kind = file.Metadata.GetValueOrDefault(KindKey, UnrecordedKind);
        if (kind != _trainee.Kind)
            throw new LdmException($"the run in '{runDir}' is a {kind} run, not a {_trainee.Kind} run; choose another run folder.");
        // Checkpoints written before the settings were recorded resume unchecked.
        if (file.Metadata.TryGetValue(SettingsKey, out var saved))
            ChangedSettings = _trainee.Settings.CheckResumable(RunSettings.FromJson(saved), runDir, _trainee.AllowChangedSettings);
        long step = long.Parse(stepText, CultureInfo.InvariantCulture);
        // Checkpoints written before the interval was recorded resume with an empty one (their first entry averages fewer steps).
        if (file.Metadata.TryGetValue(LogIntervalKey, out var interval)) _interval = LogInterval.FromJson(interval, step, path);
        using var scope = torch.NewDisposeScope();
        _trainee.LoadState(file.ReadAll(), path);
        return step;
    }

    /// <summary>
    /// Makes every rank continue from rank 0's state: its step (a resumed run's) and every state tensor (weights, EMA,
    /// optimizer moments), broadcast in name order. Ranks start from the same seed anyway; this also covers a resume,
    /// which only rank 0 reads, and any difference in initialisation. Nothing happens in a group of one.
    /// </summary>
    public void FollowMain()
    {
        if (_group.Size == 1) return;
        using var scope = torch.NewDisposeScope();
        var step = torch.tensor(Step, device: torch.CPU);
        _group.Broadcast(step);
        Step = _lastCheckpoint = step.item<long>();
        var state = _trainee.StateTensors();
        foreach (var name in state.Keys.Order(StringComparer.Ordinal)) _group.Broadcast(state[name]);
        // The tensors may be copies (and the optimizer keeps its step count outside them): load them back.
        if (!_group.IsMain) _trainee.LoadState(state, "rank 0's training state");
    }

    /// <summary>True on every rank when <paramref name="mine"/> is true on any rank, so all of them take the same branch
    /// (one rank stopping alone would leave the others waiting in a collective).</summary>
    bool AnyRank(bool mine)
    {
        if (_group.Size == 1) return mine;
        using var flag = torch.tensor(mine ? 1L : 0L, device: torch.CPU);
        _group.AllReduceSum(flag);
        return flag.item<long>() > 0;
    }

    /// <summary>
    /// Trains until the step budget or <paramref name="cancel"/>; checkpoints every <see cref="TrainingSchedule.CheckpointEvery"/>
    /// steps, at the end and when cancelled. <paramref name="afterStep"/> runs after each step's checkpoint (e.g. sample grids).
    /// Does nothing when the run <see cref="IsFinished"/>.
    /// </summary>
    public void Run(Action<TrainingProgress>? onProgress = null, CancellationToken cancel = default, Action<long>? afterStep = null)
    {
        if (RunDir != null) RunStatus.Clear(RunDir);
        try
        {
            while (!IsFinished && !AnyRank(cancel.IsCancellationRequested))
            {
                var values = StepOnce();
                onProgress?.Invoke(new TrainingProgress(Step, Schedule.Steps, values["loss"], StepsPerSecond, LearningRate, values));
                if (Step % Schedule.CheckpointEvery == 0 || IsFinished) SaveCheckpoint();
                afterStep?.Invoke(Step);
            }
            if (Step != _lastCheckpoint) SaveCheckpoint();
        }
        catch (Exception e) when (RunDir != null && e is not OperationCanceledException)
        {
            // Readers of the folder alone (ldm serve) can then tell a failed run from one that was stopped.
            RunStatus.Write(RunDir, RunStatus.Failed, Step, e.Message);
            throw;
        }
        if (RunDir != null && !IsFinished) RunStatus.Write(RunDir, RunStatus.Interrupted, Step, null);
    }

    /// <summary>One step with the scheduled learning rate and the metrics log, without a checkpoint.</summary>
    public IReadOnlyDictionary<string, double> StepOnce()
    {
        _clock.Start();
        double lr = Schedule.LearningRateAt(Step);
        var values = _trainee.TrainStep(Step, lr);
        foreach (var (name, value) in values)
            if (!double.IsFinite(value))
                throw new TrainingDivergedException($"the {name} became {value.ToString(CultureInfo.InvariantCulture)}", Step + 1,
                    _lastCheckpoint > 0 ? RunDir : null, _divergenceAdvice);   // name the folder only when it holds a checkpoint to go back to
        Step++;
        _stepsTimed++;
        LearningRate = lr;
        _interval.Add(values);
        bool boundary = Step % Schedule.LogEvery == 0;
        if (boundary || IsFinished)
        {
            WriteMetrics();
            WeightChecksum.Check(_group, _trainee.Weights(), Step);
            if (boundary) _interval = new LogInterval();
        }
        return values;
    }

    /// <summary>
    /// One log entry: the step, the means of the interval's values, the learning rate (everything so far follows from
    /// the seed and the step, so a resumed run writes the same text), then the fields of the process
    /// (<see cref="MetricsLog.ProcessFields"/>: speed, step budget, memory, time), which resumed runs need not share.
    /// </summary>
    void WriteMetrics()
    {
        var entry = new Dictionary<string, object> { ["step"] = Step };
        foreach (var (name, mean) in _interval.Means()) entry[name] = mean;
        entry["lr"] = LearningRate;
        entry["steps_per_sec"] = Math.Round(StepsPerSecond, 4);
        // The step budget lets a reader of the log alone (ldm serve's runs page) tell progress, time left and the end.
        entry["total_steps"] = Schedule.Steps;
        // Resident memory shows whether a long run's memory stays flat (docs/performance.md measures it).
        long rss = Diagnostics.ProcessMemory.ResidentBytes();
        if (rss >= 0) entry["rss_mib"] = Math.Round(rss / 1048576.0, 1);
        entry["time"] = DateTime.UtcNow.ToString("O");
        _log.Write(entry);
    }

    /// <summary>
    /// Checks that every weight is finite, writes <c>checkpoint.safetensors</c> (atomically) and lets the trainer publish
    /// its model. In memory only the check and the publishing happen.
    /// </summary>
    public void SaveCheckpoint()
    {
        using (var scope = torch.NewDisposeScope())
        {
            // A finite loss does not prove finite weights (a NaN gradient passes through AdamW into them); never replace
            // the last good checkpoint with weights nobody can resume from or sample.
            var bad = _trainee.Weights().FirstOrDefault(w => !w.weight.isfinite().all().item<bool>()).name;
            if (AnyRank(bad is not null))
                throw new TrainingDivergedException($"the weight '{bad ?? "(on another rank)"}' became non-finite", Step,
                    _lastCheckpoint > 0 ? RunDir : null, _divergenceAdvice);
            if (RunDir != null)
            {
                var meta = new Dictionary<string, string>(_trainee.CheckpointMetadata)
                {
                    [KindKey] = _trainee.Kind,
                    [StepKey] = Step.ToString(CultureInfo.InvariantCulture),
                    [SettingsKey] = _trainee.Settings.ToJson(),
                    [LogIntervalKey] = _interval.ToJson(),
                };
                SafetensorsWriter.Write(Path.Combine(RunDir, CheckpointFile), _trainee.StateTensors(), meta);
            }
        }
        _trainee.PublishModel(RunDir, Step, IsFinished);
        _lastCheckpoint = Step;
    }

    /// <summary>The tensors of <paramref name="state"/> whose names start with <paramref name="prefix"/>, without it (one part of a checkpoint).</summary>
    public static Dictionary<string, Tensor> Part(IReadOnlyDictionary<string, Tensor> state, string prefix) =>
        state.Where(kv => kv.Key.StartsWith(prefix, StringComparison.Ordinal)).ToDictionary(kv => kv.Key[prefix.Length..], kv => kv.Value);

    public void Dispose() => _log.Dispose();
}
