using System.CommandLine;
using System.Diagnostics;
using LatentDiffusion.Cli.Grammar;
using LatentDiffusion.IO;
using LatentDiffusion.Pipelines;
using LatentDiffusion.Training;
using TorchSharp;

namespace LatentDiffusion.Cli.Commands;

/// <summary>
/// `ldm quickstart`: the main job. Samples the trained models shipped in <c>models/</c> (a class grid of the shapes
/// model, a prompt grid of the shapes text model, a class grid of the Fashion-MNIST model) in seconds and says where
/// the PNGs are. With <c>--train</c> it first trains the shapes class model from scratch (the shapes-class recipe).
/// </summary>
public static class QuickstartCommand
{
    /// <summary>Prompts of the text grid: one and two shapes, every colour and kind.</summary>
    public static readonly string[] Prompts =
    [
        "a large red circle at the center", "a small blue square at the top left", "a large green triangle at the bottom right",
        "a small yellow circle at the right", "a large blue triangle at the top", "a small red square at the bottom left",
        "a small green circle at the top left and a large yellow square at the bottom left",
        "a large red triangle at the left and a small blue circle at the right",
    ];

    public static Command Create()
    {
        var output = CommonOptions.Out("Output folder.", "out/quickstart");
        var runtime = CommonOptions.Runtime();
        var models = new Option<string?>("--models") { Description = "Folder of the shipped models (default: models/ of the repository)." };
        var train = new Option<bool>("--train") { Description = "Train the shapes class model from scratch first (recipes/shapes-class.json, about 45 minutes on 2 cores) and sample it." };
        var steps = new Option<int?>("--steps") { Description = "With --train: training steps instead of the recipe's." };
        var seed = CommonOptions.Seed("noise of the samples");
        var dtype = CommonOptions.ComputeDtype("Compute dtype of the denoisers (with --train, also of the training when given; else the recipe's)",
            torch.ScalarType.Float32, torch.ScalarType.BFloat16);
        var command = new Command("quickstart", "Sample the shipped models (class grid, prompt grid) in seconds; --train trains the shapes model from scratch first.")
        {
            output, models, train, steps, seed, dtype,
        };
        foreach (var o in runtime.All) command.Options.Add(o);
        command.SetAction(parse =>
        {
            var device = runtime.Apply(parse);
            string outDir = CliParsing.OutputFolder(parse.GetValue(output)!, "--out");
            long seedValue = parse.GetValue(seed);
            var computeDtype = DtypeNames.ParseCompute(parse.GetValue(dtype), torch.ScalarType.Float32, torch.ScalarType.BFloat16);
            var written = new List<string>();
            if (parse.GetValue(train))
            {
                string runDir = Path.Combine(outDir, "run");
                var args = new List<string> { "train", "--recipe", "shapes-class", "--out", runDir };
                if (parse.GetValue(steps) is int s) args.AddRange(["--steps", s.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
                args.AddRange(["--device", parse.GetValue(runtime.Device)!]);
                if (parse.GetResult(dtype) is { Implicit: false }) args.AddRange(["--dtype", computeDtype.ToString()]);
                if (parse.GetValue(runtime.Threads) is int threads) args.AddRange(["--threads", threads.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
                int code = CliRunner.Run(LdmApp.BuildRoot(), args.ToArray());
                if (code != 0) return code;
                written.Add(SampleClasses(Path.Combine(runDir, DiffusionTrainer.ModelFile), Path.Combine(outDir, "shapes-class-trained.png"), 6, seedValue, device, computeDtype));
            }
            else
            {
                string dir = parse.GetValue(models) ?? FindModels();
                Console.WriteLine(DtypeNames.Chosen(computeDtype, computeDtype.Resolve(device), device));
                // Each model samples with the settings stored in it (guidance 1 for the shapes class model, see docs/results.md).
                written.Add(SampleClasses(Required(dir, "shapes-class.safetensors"), Path.Combine(outDir, "shapes-class.png"), 6, seedValue, device, computeDtype));
                written.Add(SamplePrompts(Required(dir, "shapes-text.safetensors"), Path.Combine(outDir, "shapes-text.png"), 4, seedValue, device, computeDtype));
                written.Add(SampleClasses(Required(dir, "fashion-mnist.safetensors"), Path.Combine(outDir, "fashion-mnist.png"), 6, seedValue, device, computeDtype));
            }
            foreach (var line in written) Console.WriteLine(line);
            return 0;
        });
        return command;
    }

    static string FindModels() =>
        Recipe.SearchRoots("models").FirstOrDefault(d => File.Exists(Path.Combine(d, "shapes-class.safetensors")))
        ?? throw new LdmException("the shipped models were not found (models/shapes-class.safetensors); run from the repository, pass --models DIR, or train with --train.");

    static string Required(string dir, string file)
    {
        string path = Path.Combine(dir, file);
        if (!File.Exists(path)) throw new LdmException($"'{path}' is missing; check out the repository's models/ folder or pass --models DIR.");
        return path;
    }

    /// <summary>One row per class, <paramref name="perClass"/> samples each (the model's recommended sampling).</summary>
    static string SampleClasses(string path, string png, int perClass, long seed, torch.Device device, ComputeDtype dtype)
    {
        var clock = Stopwatch.StartNew();
        using var pipe = DiffusionPipeline.Load(path, device, dtype);
        var labels = Enumerable.Range(0, pipe.NumClasses).SelectMany(c => Enumerable.Repeat(c, perClass)).ToList();
        var options = pipe.DefaultOptions with { Seed = seed, BatchSize = labels.Count };
        using var images = pipe.Generate(labels, options);
        images.SaveGrid(png, perClass);
        return $"{Path.GetFileName(path)}: {labels.Count} samples (guidance {options.GuidanceScale:G}) in {clock.Elapsed.TotalSeconds:F1} s, one row per class ({string.Join(", ", pipe.ClassNames)}): {Path.GetFullPath(png)}";
    }

    /// <summary>One row per prompt of <see cref="Prompts"/>.</summary>
    static string SamplePrompts(string path, string png, int perPrompt, long seed, torch.Device device, ComputeDtype dtype)
    {
        var clock = Stopwatch.StartNew();
        using var pipe = DiffusionPipeline.Load(path, device, dtype);
        var prompts = Prompts.SelectMany(p => Enumerable.Repeat(p, perPrompt)).ToList();
        var options = pipe.DefaultOptions with { Seed = seed, BatchSize = prompts.Count };
        using var images = pipe.Generate(prompts, options);
        images.SaveGrid(png, perPrompt);
        return $"{Path.GetFileName(path)}: {prompts.Count} samples (guidance {options.GuidanceScale:G}) in {clock.Elapsed.TotalSeconds:F1} s, one row per prompt (\"{string.Join("\", \"", Prompts)}\"): {Path.GetFullPath(png)}";
    }
}
