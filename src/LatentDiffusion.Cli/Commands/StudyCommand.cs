using System.CommandLine;
using System.Globalization;
using LatentDiffusion.Autoencoders;
using LatentDiffusion.Cli.Grammar;
using LatentDiffusion.Cli.Plots;
using LatentDiffusion.Evaluation;
using LatentDiffusion.Pipelines;
using LatentDiffusion.Studies;
using TorchSharp;

namespace LatentDiffusion.Cli.Commands;

/// <summary>
/// `ldm study`: trains the configurations of a study file (<see cref="StudySpec"/>) on the same data and budget,
/// evaluates them at intervals, and writes report.md with its plots and sample grids into the study folder; run again,
/// it resumes. A thin layer over <see cref="Study"/>.
/// </summary>
public static class StudyCommand
{
    public static Command Create()
    {
        var spec = new Argument<string>("study") { Description = "Study file (JSON; see docs/study.md and studies/)." };
        var output = CommonOptions.Out("Study folder (resumes a study it holds).");
        var seeds = new Option<string?>("--seeds") { Description = "Override the study's seeds, e.g. 0,1,2." };
        var steps = new Option<int?>("--steps") { Description = "Override the training budget in steps (of the first configuration under equal FLOPs)." };
        var evalEvery = new Option<int?>("--eval-every") { Description = "Override the evaluation interval (steps)." };
        var samples = new Option<int?>("--samples") { Description = "Override the images per evaluation." };
        var planOnly = new Option<bool>("--plan") { Description = "Print each configuration's parameters, forward GFLOPs and budget, and stop." };
        var runtime = CommonOptions.Runtime();
        var command = new Command("study", "Compare backbones or block designs on equal terms: same data, seeds, order, optimizer and budget; evaluated at intervals; a report with table, plots and grids.")
        { spec, output, seeds, steps, evalEvery, samples, planOnly };
        foreach (var o in runtime.All) command.Options.Add(o);
        command.SetAction(parse =>
        {
            var s = StudySpec.Load(parse.GetValue(spec)!);
            var device = runtime.Apply(parse);
            var training = s.Training with { Steps = parse.GetValue(steps) ?? s.Training.Steps };
            var options = new StudyOptions
            {
                Training = training,
                Seeds = parse.GetValue(seeds) is { } seedText ? ParseSeeds(seedText) : s.Seeds,
                Budget = s.Budget,
                EvaluateEvery = parse.GetValue(evalEvery) ?? Math.Min(s.EvaluateEvery, training.Steps),
                Sampling = new SamplingOptions
                {
                    Sampler = SamplerNames.Parse(StudySpec.StringOf(s.Evaluate, "sampler", s.Path) ?? "ddim"),
                    Steps = StudySpec.Int(s.Evaluate, "steps", s.Path) ?? 50,
                    GuidanceScale = StudySpec.Double(s.Evaluate, "guidance", s.Path) ?? 1.0,
                    BatchSize = StudySpec.Int(s.Evaluate, "batch-size", s.Path) ?? 100,
                    Seed = StudySpec.Int(s.Evaluate, "seed", s.Path) ?? 0,
                },
                GridImages = StudySpec.Int(s.Evaluate, "grid", s.Path) ?? 32,
            };
            string dir = CliParsing.OutputFolder(parse.GetValue(output)!, "--out");
            var dataSpec = DataSetSpec.Parse(s.Data, "\"data\"").Require("\"data\" of the study", "images or a latent cache",
                DataSetKind.Shapes, DataSetKind.ShapesText, DataSetKind.FashionMnist, DataSetKind.ImageFolder, DataSetKind.CaptionedFolder, DataSetKind.LatentCache);
            using var set = TrainingSet.Load(dataSpec, s.Autoencoder, dir, (size, ch) =>
                DataSetLoader.Load(dataSpec, 20000, training.Seed, size ?? 32, ch ?? 3));
            bool text = TrainCommand.IsTextCondition(s.Condition, s.Data, set);
            var configurations = s.Configurations.Select(c => new StudyConfiguration(c.name, TrainCommand.BuildInfo(c.model, set, text ? s.Text : null))).ToList();
            if (parse.GetValue(planOnly))
            {
                Study.CheckConfigurations(configurations);
                foreach (var plan in StudyPlan.For(configurations, options))
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{plan.Configuration.Name}: {TrainCommand.Describe(plan.Configuration.Model.Backbone)}; {plan.Cost.Parameters / 1e6:F3}M parameters, {plan.Cost.ForwardFlops / 1e9:G4} forward GFLOPs/image; {plan.Steps} steps, evaluated at {string.Join(", ", plan.EvaluationSteps)}"));
                return 0;
            }
            var owned = new List<IDisposable>();
            try
            {
                var evaluator = CreateEvaluator(s, parse.GetValue(samples), text, owned);
                using var autoencoder = set.AutoencoderPath is { } ae ? AutoencoderKL.Load(ae) : null;
                autoencoder?.to(device);
                var study = new Study(dir, configurations, set.Data, options, evaluator, autoencoder, device);
                Console.WriteLine($"study: {s}; {study.Results.Records.Count} of {study.EvaluationCount} evaluations done; measuring {study.EvaluatorDescription}");
                foreach (var plan in study.Plans)
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"  {plan.Configuration.Name}: {TrainCommand.Describe(plan.Configuration.Model.Backbone)}; {plan.Cost.Parameters / 1e6:F3}M parameters, {plan.Cost.ForwardFlops / 1e9:G4} GFLOPs/image, {plan.Steps} steps"));
                string title = s.Description.Length > 0 ? s.Description : $"Study {Path.GetFileNameWithoutExtension(s.Path)}";
                WriteReport(study, title);
                var reached = new Dictionary<(string, long), long>();
                foreach (var r in study.Results.Records) reached[(r.Configuration, r.Seed)] = Math.Max(reached.GetValueOrDefault((r.Configuration, r.Seed)), r.Step);
                double total = study.Plans.Sum(p => (double)p.Steps) * options.Seeds.Count;
                ConsoleProgress.Run("study", total, report =>
                {
                    study.Run(p =>
                    {
                        reached[(p.Configuration, p.Seed)] = p.Step;
                        report(reached.Values.Sum(), p.Stage == "training"
                            ? $"{p.Configuration} seed {p.Seed}: step {p.Step}/{p.Steps}, loss {p.Loss:F4}"
                            : $"{p.Configuration} seed {p.Seed}: evaluating at step {p.Step}");
                    }, record =>
                    {
                        Console.WriteLine($"{record.Configuration} seed {record.Seed} step {record.Step}: "
                            + string.Join(", ", record.Metrics.Select(m => string.Create(CultureInfo.InvariantCulture, $"{m.Key} {m.Value:G4}")))
                            + string.Create(CultureInfo.InvariantCulture, $" ({record.TrainingSeconds:F0} s training, {record.ImagesPerSecond:F1} images/s sampling)"));
                        WriteReport(study, title);
                    });
                    return 0;
                });
                Console.WriteLine($"report: {Path.Combine(dir, StudyReport.FileName)}");
            }
            finally { foreach (var d in owned) d.Dispose(); }
            return 0;
        });
        return command;
    }

    static List<long> ParseSeeds(string text)
    {
        var seeds = new List<long>();
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            seeds.Add(long.TryParse(part, NumberStyles.Integer, CultureInfo.InvariantCulture, out long v) ? v
                : throw new LdmException($"--seeds '{text}' is not a comma-separated list of integers; write e.g. 0,1."));
        if (seeds.Count == 0) throw new LdmException("--seeds is empty; write e.g. 0,1.");
        return seeds;
    }

    /// <summary>The study file's "evaluate": the shapes checker, or FID on a feature network against a reference;
    /// <paramref name="owned"/> gets what must be freed with it (the feature network, reference images, statistics).</summary>
    static IStudyEvaluator CreateEvaluator(StudySpec s, int? samplesOverride, bool text, List<IDisposable> owned)
    {
        var e = s.Evaluate;
        int samples = samplesOverride ?? StudySpec.Int(e, "samples", s.Path) ?? 1000;
        if (StudySpec.StringOf(e, "checker", s.Path) is { } checker)
        {
            if (!checker.Equals("shapes", StringComparison.OrdinalIgnoreCase))
                throw new LdmException($"study file '{s.Path}': \"evaluate.checker\" '{checker}' is unknown; the only checker is shapes.");
            return new ShapesCheckerEvaluator(samples, text);
        }
        string features = StudySpec.StringOf(e, "features", s.Path)
            ?? throw new LdmException($"study file '{s.Path}': \"evaluate\" needs \"features\" (classifier:PATH or inception) and \"reference\", or \"checker\": \"shapes\".");
        string reference = StudySpec.StringOf(e, "reference", s.Path)
            ?? throw new LdmException($"study file '{s.Path}': \"evaluate\" needs \"reference\" (the real images to compare with, e.g. fashion-mnist:test).");
        var extractor = EvaluateCommand.CreateExtractor(features, null);
        owned.Add(extractor);
        var source = EvaluateCommand.OpenSource(DataSetSpec.Parse(reference, "evaluate.reference"), extractor.Channels, 0, owned);
        var evaluator = new ClassifierFidEvaluator(extractor, source, reference, samples, StudySpec.Int(e, "max-reference", s.Path));
        owned.Add(evaluator);
        return evaluator;
    }

    /// <summary>report.md with the primary measure against steps and against training FLOPs, and the grids that exist.</summary>
    static void WriteReport(Study study, string title)
    {
        string dir = study.Dir!;
        var metric = study.Metrics[0];
        var plots = new List<(string, string)>();
        if (study.Results.Records.Count > 0)
        {
            StudyPlot.Save(Path.Combine(dir, "metric-vs-steps.png"), study, metric, byFlops: false);
            StudyPlot.Save(Path.Combine(dir, "metric-vs-flops.png"), study, metric, byFlops: true);
            plots.Add(($"{metric.Label} against training steps", "metric-vs-steps.png"));
            plots.Add(($"{metric.Label} against training FLOPs", "metric-vs-flops.png"));
        }
        var grids = study.Plans.Select(p => p.Configuration.Name).Where(n => File.Exists(study.GridPath(n)))
            .ToDictionary(n => n, n => $"{Study.GridsFolder}/{n}.png");
        IO.AtomicFile.WriteAllText(Path.Combine(dir, StudyReport.FileName), StudyReport.Markdown(study, title, plots, grids));
    }
}
