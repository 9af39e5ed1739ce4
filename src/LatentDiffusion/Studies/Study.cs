using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using LatentDiffusion.Autoencoders;
using LatentDiffusion.Denoisers;
using LatentDiffusion.IO;
using LatentDiffusion.Pipelines;
using LatentDiffusion.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Studies;

/// <summary>
/// Trains several configurations (backbones, block designs, sizes) on the same data, seeds, data order, optimizer,
/// schedule and budget, evaluates each at set intervals with one evaluator, and keeps the results: the paper's
/// experiment as a tool. A study folder holds
/// <list type="bullet">
/// <item><c>study.json</c>: the plan (configurations, costs, budgets, evaluation steps, shared settings); a resume with
/// another plan is refused,</item>
/// <item><c>runs/NAME/seed-S/</c>: one ordinary, resumable training run per configuration and seed,</item>
/// <item><c>results.jsonl</c>: one <see cref="StudyRecord"/> per evaluation,</item>
/// <item><c>grids/NAME.png</c>: samples of each configuration's first-seed run at its end, with the same noise for all.</item>
/// </list>
/// The study proceeds in rounds (every configuration reaches its next evaluation step before any goes further), so an
/// interrupted study has comparable results for all; run again, it resumes where it stopped.
/// </summary>
public sealed class Study
{
    /// <summary>File and folder names in a study folder.</summary>
    public const string PlanFile = "study.json", RunsFolder = "runs", GridsFolder = "grids";

    readonly ITrainingData _data;
    readonly IStudyEvaluator _evaluator;
    readonly AutoencoderKL? _autoencoder;
    readonly Device _device;

    /// <summary>The study folder, or null for a study in memory (nothing written).</summary>
    public string? Dir { get; }
    /// <summary>The configurations, in the order given (the first sets the budget under equal FLOPs).</summary>
    public IReadOnlyList<StudyConfiguration> Configurations { get; }
    /// <summary>The shared settings.</summary>
    public StudyOptions Options { get; }
    /// <summary>Per configuration: cost, budget, evaluation steps.</summary>
    public IReadOnlyList<StudyPlan> Plans { get; }
    /// <summary>Every evaluation made (including those found in the folder).</summary>
    public StudyResults Results { get; }
    /// <summary>The evaluator's measures (the first is the primary one).</summary>
    public IReadOnlyList<StudyMetric> Metrics => _evaluator.Metrics;
    /// <summary>What the evaluator measures.</summary>
    public string EvaluatorDescription => _evaluator.Description;

    /// <summary>A study of <paramref name="configurations"/> on <paramref name="data"/>; refuses configurations that do not fit the same data.</summary>
    /// <param name="dir">The study folder (created; resumed when it holds a plan), or null to keep everything in memory.</param>
    /// <param name="configurations">At least one; names unique and file-safe.</param>
    /// <param name="data">The training data every run reads (the caller keeps ownership).</param>
    /// <param name="options">Shared training settings, budget, seeds, evaluation schedule and sampling.</param>
    /// <param name="evaluator">Scores a model's samples.</param>
    /// <param name="autoencoder">Decodes the samples of latent models (null for pixel models); the caller keeps ownership.</param>
    /// <param name="device">Where the runs train and sample (default: the CPU).</param>
    public Study(string? dir, IReadOnlyList<StudyConfiguration> configurations, ITrainingData data, StudyOptions options,
        IStudyEvaluator evaluator, AutoencoderKL? autoencoder = null, Device? device = null)
    {
        options.Validate();
        CheckConfigurations(configurations);
        foreach (var c in configurations)
            if (!c.Model.IsPixelSpace && autoencoder is null)
                throw new LdmException($"study configuration '{c.Name}' is a latent model; the study needs the autoencoder that decodes its samples.");
        if (data.Count < 1) throw new LdmException("the study's training data is empty; give a data set with images.");
        Dir = dir;
        Configurations = configurations;
        Options = options;
        _data = data;
        _evaluator = evaluator;
        _autoencoder = autoencoder;
        _device = device ?? torch.CPU;
        Plans = StudyPlan.For(configurations, options);
        if (dir is null) { Results = StudyResults.InMemory(); return; }
        Directory.CreateDirectory(dir);
        string planPath = Path.Combine(dir, PlanFile);
        string plan = PlanJson();
        if (File.Exists(planPath) && FirstDifference(File.ReadAllText(planPath), plan) is { } difference)
            throw new LdmException($"the study in '{dir}' was planned with other settings ({difference}); a study may only gain configurations "
                + "or seeds at the end of its lists; choose another study folder, or delete that one to start again.");
        AtomicFile.WriteAllText(planPath, plan + "\n");
        Results = StudyResults.Open(dir);
    }

    /// <summary>Evaluations the whole study makes.</summary>
    public int EvaluationCount => Plans.Sum(p => p.EvaluationSteps.Count) * Options.Seeds.Count;

    /// <summary>The folder of one run (null in memory).</summary>
    public string? RunDir(string configuration, long seed) => Dir is null ? null : Path.Combine(Dir, RunsFolder, configuration, $"seed-{seed}");

    /// <summary>The sample grid of a configuration (null in memory).</summary>
    public string? GridPath(string configuration) => Dir is null ? null : Path.Combine(Dir, GridsFolder, configuration + ".png");

    /// <summary>
    /// Trains and evaluates until every run reached its budget, or until <paramref name="cancel"/> (the current run is
    /// checkpointed; a later call resumes). <paramref name="onEvaluated"/> is called after each new evaluation (e.g. to
    /// rewrite a report).
    /// </summary>
    public void Run(Action<StudyProgress>? onProgress = null, Action<StudyRecord>? onEvaluated = null, CancellationToken cancel = default)
    {
        int rounds = Plans.Max(p => p.EvaluationSteps.Count);
        foreach (long seed in Options.Seeds)
            for (int round = 0; round < rounds; round++)
                foreach (var plan in Plans)
                {
                    if (round >= plan.EvaluationSteps.Count) continue;
                    if (cancel.IsCancellationRequested) return;
                    long step = plan.EvaluationSteps[round];
                    if (Results.Find(plan.Configuration.Name, seed, step) is not null) continue;
                    var record = TrainAndEvaluate(plan, seed, step, round == plan.EvaluationSteps.Count - 1, onProgress, cancel);
                    if (record is null) return;
                    Results.Add(record);
                    onEvaluated?.Invoke(record);
                }
    }

    /// <summary>Trains one run up to <paramref name="step"/> (resuming it), then evaluates its EMA model; null when cancelled.</summary>
    StudyRecord? TrainAndEvaluate(StudyPlan plan, long seed, long step, bool last, Action<StudyProgress>? onProgress, CancellationToken cancel)
    {
        string name = plan.Configuration.Name;
        var info = plan.Configuration.Model;
        int done = Results.Records.Count;
        var training = Options.Training with { Steps = (int)step, Seed = seed };
        var clock = Stopwatch.StartNew();
        using var trainer = new DiffusionTrainer(info, _data, training, RunDir(name, seed), _device);
        if (trainer.Step > step)
            throw new LdmException($"the run '{RunDir(name, seed)}' is at step {trainer.Step}, past the evaluation at step {step} that {StudyResults.FileName} lacks; "
                + "delete that run folder to train it again.");
        trainer.Run(p => onProgress?.Invoke(new StudyProgress(name, seed, p.Step, plan.Steps, "training", done, EvaluationCount, p.Loss)), cancel);
        if (trainer.Step < step) return null;
        double seconds = clock.Elapsed.TotalSeconds + (Results.Before(name, seed, step)?.TrainingSeconds ?? 0);

        onProgress?.Invoke(new StudyProgress(name, seed, step, plan.Steps, "evaluating", done, EvaluationCount));
        using var pipeline = DiffusionPipeline.FromModels(trainer.EmaModel, info, _autoencoder);
        clock.Restart();
        var metrics = _evaluator.Evaluate(pipeline, Options.Sampling, cancel);
        double imagesPerSecond = _evaluator.LastImageCount / Math.Max(1e-9, clock.Elapsed.TotalSeconds);
        if (cancel.IsCancellationRequested) return null;
        if (last && seed == Options.Seeds[0] && Options.GridImages > 0 && GridPath(name) is { } grid)
            SaveGrid(pipeline, grid);
        return new StudyRecord
        {
            Configuration = name, Seed = seed, Step = step,
            TrainingFlops = plan.TrainingFlopsAt(step, Options.Training.BatchSize),
            TrainingSeconds = Math.Round(seconds, 2),
            ImagesPerSecond = Math.Round(imagesPerSecond, 3),
            Metrics = metrics,
        };
    }

    /// <summary>A grid with the same conditions and noise for every configuration: classes in turn, or the first distinct training captions.</summary>
    void SaveGrid(DiffusionPipeline pipeline, string path)
    {
        // Class grids: one class per row (a square grid); text grids: rows of 8 captions.
        int n = Options.GridImages, columns = pipeline.Condition == ConditionKind.Text ? Math.Min(8, n) : (int)Math.Ceiling(Math.Sqrt(n));
        var sampling = Options.Sampling with { BatchSize = Math.Min(Options.Sampling.BatchSize, n) };
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        if (pipeline.Condition == ConditionKind.Text)
        {
            var captions = (_data.AllCaptions ?? []).Where(c => !string.IsNullOrWhiteSpace(c)).Distinct().Take(n).ToList();
            if (captions.Count == 0) return;
            var prompts = Enumerable.Range(0, n).Select(i => captions[i % captions.Count]!).ToList();
            using var text = pipeline.Generate(prompts, sampling);
            text.SaveGrid(path, columns);
            return;
        }
        // Row by row: each row one class (as many rows as classes fit), so grids of different models line up.
        var labels = Enumerable.Range(0, n).Select(i => (i / columns) % Math.Max(1, pipeline.NumClasses)).ToList();
        using var images = pipeline.Generate(labels, sampling);
        images.SaveGrid(path, columns);
    }

    /// <summary>Throws <see cref="LdmException"/> unless the configurations have usable, distinct names and fit the same data
    /// (space, input grid, channels, conditioning, classes, text tokens).</summary>
    public static void CheckConfigurations(IReadOnlyList<StudyConfiguration> configurations)
    {
        if (configurations.Count == 0) throw new LdmException("a study needs at least one configuration.");
        var names = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var c in configurations)
        {
            if (string.IsNullOrWhiteSpace(c.Name) || !c.Name.All(ch => char.IsAsciiLetterOrDigit(ch) || ch is '-' or '_' or '.') || c.Name.StartsWith('.'))
                throw new LdmException($"study configuration name '{c.Name}' is not usable as a folder name; use letters, digits, '-', '_' and '.'.");
            if (!names.Add(c.Name)) throw new LdmException($"the study has two configurations named '{c.Name}'; give each its own name.");
            c.Model.Check($"study configuration '{c.Name}'");
        }
        var first = configurations[0];
        foreach (var c in configurations.Skip(1))
        {
            string? differs =
                c.Model.Space != first.Model.Space ? "data space" :
                c.Model.Backbone.InputSize != first.Model.Backbone.InputSize ? "input size" :
                c.Model.Backbone.InChannels != first.Model.Backbone.InChannels ? "input channels" :
                c.Model.Condition != first.Model.Condition ? "conditioning (class or text)" :
                !c.Model.ClassNames.SequenceEqual(first.Model.ClassNames) ? "class names" :
                c.Model.Backbone.Text is { } t && first.Model.Backbone.Text is { } ft && (t.VocabSize != ft.VocabSize || t.MaxTokens != ft.MaxTokens || t.Tokenizer != ft.Tokenizer) ? "text tokens" :
                null;
            if (differs is not null)
                throw new LdmException($"study configurations '{first.Name}' and '{c.Name}' differ in {differs}, so they cannot train on the same data; a study compares models of one data set.");
        }
    }

    /// <summary>The plan as JSON: what a resume must match.</summary>
    string PlanJson()
    {
        var json = new JsonObject
        {
            ["format"] = "ldm-study/1",
            ["budget"] = Options.Budget == StudyBudget.EqualSteps ? "steps" : "flops",
            ["seeds"] = new JsonArray(Options.Seeds.Select(s => (JsonNode)JsonValue.Create(s)).ToArray()),
            ["evaluate_every"] = Options.EvaluateEvery,
            ["training"] = TrainingJson(Options.Training),
            ["sampling"] = JsonSerializer.SerializeToNode(Options.Sampling),
            ["evaluator"] = _evaluator.Description,
            ["configurations"] = new JsonArray(Plans.Select(p => (JsonNode)new JsonObject
            {
                ["name"] = p.Configuration.Name,
                ["model"] = DenoiserCheckpoint.ToJson(p.Configuration.Model),
                ["parameters"] = p.Cost.Parameters,
                ["forward_flops"] = p.Cost.ForwardFlops,
                ["steps"] = p.Steps,
                ["evaluation_steps"] = new JsonArray(p.EvaluationSteps.Select(s => (JsonNode)JsonValue.Create(s)).ToArray()),
            }).ToArray()),
        };
        return json.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>The training settings a resume must match: the seed is per run, and the dtype a speed setting (auto may
    /// resolve differently on the machine a study resumes on; "Bf16" is its name in plans written before Dtype).</summary>
    static JsonNode TrainingJson(DiffusionTrainingOptions training)
    {
        var json = (JsonObject)JsonSerializer.SerializeToNode(training with { Seed = 0 })!;
        json.Remove(nameof(DiffusionTrainingOptions.Dtype));
        return json;
    }

    /// <summary>
    /// What keeps a saved plan from being resumed with <paramref name="now"/>, or null: the shared settings must be equal,
    /// every saved configuration and seed must come back unchanged in its place; new ones may follow them. Costs are
    /// derived from the model and not compared.
    /// </summary>
    static string? FirstDifference(string saved, string now)
    {
        if (JsonNode.Parse(saved) is not JsonObject a) return "the saved plan is not a JSON object";
        var b = (JsonObject)JsonNode.Parse(now)!;
        foreach (var (key, value) in b)
        {
            if (key == "seeds" && a[key] is JsonArray sa && value is JsonArray sb)
            {
                if (sa.Count > sb.Count || sa.Where((s, i) => !JsonNode.DeepEquals(s, sb[i])).Any()) return "seeds";
                continue;
            }
            if (key == "training" && a[key] is JsonObject savedTraining) savedTraining.Remove("Bf16");
            if (key != "configurations") { if (!JsonNode.DeepEquals(a[key], value)) return $"\"{key}\""; continue; }
            if (a[key] is not JsonArray ca || value is not JsonArray cb) return "configurations";
            if (ca.Count > cb.Count) return $"{ca.Count} configurations then, {cb.Count} now";
            for (int i = 0; i < ca.Count; i++)
                foreach (var field in new[] { "name", "model", "steps", "evaluation_steps" })
                    if (!JsonNode.DeepEquals(ca[i]?[field], cb[i]?[field])) return $"configuration '{ca[i]?["name"]}' ({field})";
        }
        return null;
    }
}
