using System.CommandLine;
using LatentDiffusion.Denoisers;
using LatentDiffusion.Cli.Grammar;
using LatentDiffusion.Diffusion;
using LatentDiffusion.IO;
using LatentDiffusion.Pipelines;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Cli.Commands;

/// <summary>`ldm sample`: class- or text-conditional samples from a denoiser checkpoint, as PNGs and a grid (pixel space) or latents.</summary>
public static class SampleCommand
{
    public static Command Create()
    {
        var model = CommonOptions.Model("Denoiser checkpoint (.safetensors made by ldm train or ldm convert).");
        var classes = new Option<string?>("--classes", "-c") { Description = "Class models: class ids 3, 0,5,7, 0-11 or all (default all). Cycled to fill --num." };
        var prompt = new Option<string[]>("--prompt", "-p") { Description = "Text models: a caption to draw (repeat the option for several). Cycled to fill --num." };
        var promptsFile = new Option<string?>("--prompts-file") { Description = "Text models: a text file with one caption per line (blank lines skipped)." };
        var num = CommonOptions.Num("4 per listed class or prompt, at most 64");
        var guidance = new Option<double?>("--guidance", "-g") { Description = "Classifier-free guidance scale (1 = none; default: the model's recommended, e.g. 1 for the shipped shapes class model)." };
        var sampler = CommonOptions.Sampler(defaultValue: null, note: "default: the model's recommended, usually ddim");
        var steps = new Option<int?>("--steps") { Description = "Sampling steps (default: the model's recommended, usually 50)." };
        var eta = new Option<double>("--eta") { Description = "DDIM eta (0 = deterministic).", DefaultValueFactory = _ => 0.0 };
        var seed = CommonOptions.Seed("noise");
        var batch = new Option<int>("--batch-size") { Description = "Images per model batch.", DefaultValueFactory = _ => 32 };
        var dtype = CommonOptions.ComputeDtype("Compute dtype of the denoiser (its weights and activations)", ScalarType.Float32, ScalarType.BFloat16, ScalarType.Float16);
        var output = CommonOptions.Out("Output folder.", "samples");
        var runtime = CommonOptions.Runtime();
        var columns = new Option<int?>("--columns") { Description = "Grid columns (default: one row per listed class when they fit)." };
        var autoencoder = new Option<string?>("--autoencoder", "-a") { Description = "Latent-space models: the autoencoder checkpoint (ldm train-autoencoder / ldm convert --kind autoencoder) that decodes the latents into PNGs (default: the one the model names, when it lies beside the model file)." };

        var command = new Command("sample", "Generate class- or text-conditional samples from a denoiser checkpoint (latent models are decoded by the autoencoder beside them, or --autoencoder), with the sampling settings stored in the model unless given.")
        {
            model, classes, prompt, promptsFile, num, guidance, sampler, steps, eta, seed, batch, dtype, output, columns, autoencoder,
        };
        foreach (var o in runtime.All) command.Options.Add(o);
        command.SetAction(parse =>
        {
            var device = runtime.Apply(parse);
            string modelPath = CliParsing.ExistingFile(parse.GetValue(model)!, "--model");
            var info = DenoiserCheckpoint.PeekInfo(modelPath);
            var prompts = ReadPrompts(parse.GetValue(prompt), parse.GetValue(promptsFile));
            // The one validation of a sample request (the web server's too): classes or prompts, count, settings.
            string? classText = parse.GetValue(classes);
            var request = new SampleRequest
            {
                // A text model has no class ids to check --classes against: Resolve says to use --prompt instead.
                ClassIds = classText is null ? null : info.Condition == ConditionKind.Text ? [] : CliParsing.ClassIds(classText, info.Backbone.NumClasses),
                Prompts = prompts.Count > 0 ? prompts : null,
                Count = parse.GetValue(num),
                Sampler = SamplerNames.ParseOptional(parse.GetValue(sampler)),
                Steps = parse.GetValue(steps),
                GuidanceScale = parse.GetValue(guidance),
                Eta = parse.GetValue(eta),
                Seed = parse.GetValue(seed),
                BatchSize = parse.GetValue(batch),
            };
            // Checked with the other options, not when the grid is drawn after minutes of sampling.
            if (parse.GetValue(columns) is int c && c < 1) throw new LdmException($"--columns must be at least 1, got {c}; leave it out for one row per class.");
            string? aePath = parse.GetValue(autoencoder);
            if (aePath != null) CliParsing.ExistingFile(aePath, "--autoencoder");
            if (aePath != null && info.IsPixelSpace)
                throw new LdmException($"'{modelPath}' is a pixel-space denoiser, its samples are images already; drop --autoencoder.");
            // A latent model without an autoencoder (given, or named beside the model) writes its latents.
            bool decode = info.IsPixelSpace || aePath != null || info.AutoencoderBeside(modelPath) != null;
            // Loaded (and the autoencoder checked against the model) before anything is written.
            var computeDtype = DtypeNames.ParseCompute(parse.GetValue(dtype), ScalarType.Float32, ScalarType.BFloat16, ScalarType.Float16);
            using var pipe = DiffusionPipeline.Load(modelPath, device, computeDtype, aePath, decode);
            // Before the labels are listed (by Resolve) or anything is sampled: --num 2147483647 is refused here, not by
            // running out of memory.
            if (request.Count is int asked && asked > 0) pipe.CheckFitsInMemory(asked);
            var resolved = request.Resolve(info);
            bool text = resolved.Prompts is not null;
            var options = resolved.Options;
            int count = resolved.Count;
            var labels = resolved.Labels?.ToList() ?? [];
            Console.WriteLine(DtypeNames.Chosen(computeDtype, pipe.Dtype, device));
            string outDir = CliParsing.OutputFolder(parse.GetValue(output)!, "--out");
            // Under mpiexec each rank generates its share of whole batches (the images of a single process) and rank 0
            // gathers them and writes; the bar follows rank 0's share.
            var world = Ranks.World;
            int mine = (int)pipe.ShareOf(count, world.Rank, world.Size, options).Count;
            int totalSteps = (mine + options.BatchSize - 1) / options.BatchSize * options.Steps;
            var clock = System.Diagnostics.Stopwatch.StartNew();
            // Labels index the prompt list for a text model.
            using var samples = ConsoleProgress.Run($"sampling {count} images", totalSteps, report =>
            {
                Action<GenerationProgress> onProgress = p =>
                    report(p.ImagesDone / options.BatchSize * p.StepsPerBatch + p.Step, $"({SamplerNames.Of(options.Sampler)}, {options.Steps} steps, guidance {options.GuidanceScale:G})");
                if (world.Size > 1)
                    return text ? pipe.Generate(resolved.Prompts!, world, options, onProgress) : pipe.Generate(labels, world, options, onProgress);
                return resolved.Generate(pipe, onProgress);
            });
            if (!world.IsMain) return 0;
            double seconds = clock.Elapsed.TotalSeconds;
            int gridColumns = parse.GetValue(columns) ?? resolved.GridColumns;
            string written = WriteOutputs(samples, outDir, gridColumns);
            string decoded = pipe.Autoencoder != null ? ", decoded by the autoencoder" : "";
            Console.WriteLine($"{count} samples in {seconds:F1} s ({count / seconds:F2} images/s{decoded}; {SamplerNames.Of(options.Sampler)}, {options.Steps} steps, guidance {options.GuidanceScale:G}); wrote {written}");
            return 0;
        });
        return command;
    }

    /// <summary>PNGs and a grid for images in [-1, 1] (text models: prompts.txt too); a latents file for undecoded latent samples. Returns what was written.</summary>
    internal static string WriteOutputs(GeneratedImages samples, string outDir, int columns)
    {
        // All or nothing: PNGs without their grid or prompts.txt (a full disk, say) are removed again.
        var written = new List<string>();
        try { return WriteAll(samples, outDir, columns, written); }
        catch (LdmException e) when (written.Count > 0)
        {
            int removed = 0;
            foreach (var path in written)
            {
                try { File.Delete(path); removed++; }
                catch (Exception d) when (d is IOException or UnauthorizedAccessException) { /* stays; the count below says how many went */ }
            }
            throw new LdmException($"{OptionNames.MessageOf(e).TrimEnd('.')} (removed the {removed} file{(removed == 1 ? "" : "s")} written before it).", e);
        }
    }

    /// <summary>The samples, then prompts.txt; each file is added to <paramref name="written"/> once complete.</summary>
    static string WriteAll(GeneratedImages samples, string outDir, int columns, List<string> written)
    {
        string what;
        if (samples.IsLatent)
        {
            string path = Path.Combine(outDir, "latents.safetensors");
            var meta = new Dictionary<string, string> { ["ldm.space"] = "latent" };
            var tensors = new Dictionary<string, Tensor> { ["latents"] = samples.Images };
            using var labelTensor = samples.ClassIds is { } ids ? torch.tensor(ids.Select(l => (long)l).ToArray()) : null;
            if (labelTensor is not null) tensors["labels"] = labelTensor;
            if (samples.Prompts is { } p) meta["ldm.prompts"] = System.Text.Json.JsonSerializer.Serialize(p);
            SafetensorsWriter.Write(path, tensors, meta);
            written.Add(path);
            what = $"{path} (latents; for PNGs run ldm sample again with --autoencoder <the autoencoder the model was trained with>)";
        }
        else
        {
            // GeneratedImages.Save removes its own PNGs when one fails; from here on they are ours to remove.
            written.AddRange(samples.Save(outDir));
            string grid = samples.SaveGrid(Path.Combine(outDir, "grid.png"), columns);
            written.Add(grid);
            what = $"{samples.Count} PNGs{(samples.Prompts is null ? " and" : ",")} the grid {grid}";
        }
        if (samples.Prompts is not { } prompts) return what;
        string promptsPath = Path.Combine(outDir, "prompts.txt");
        AtomicFile.WriteAllText(promptsPath, string.Join("\n", prompts) + "\n");
        return $"{what} and {promptsPath}";
    }

    /// <summary>The --prompt values and the lines of --prompts-file, in that order.</summary>
    internal static List<string> ReadPrompts(string[]? prompts, string? file)
    {
        var all = new List<string>();
        foreach (var p in prompts ?? [])
        {
            if (string.IsNullOrWhiteSpace(p))
                throw new LdmException("--prompt is empty; describe the image (the empty caption is the unconditional input, use --guidance 0 for unconditional samples).");
            all.Add(p.Trim());
        }
        if (file != null)
        {
            CliParsing.ExistingFile(file, "--prompts-file");
            all.AddRange(PromptsFile.Read(file));
        }
        return all;
    }

}
