using System.CommandLine;
using LatentDiffusion.Cli.Grammar;
using LatentDiffusion.Diffusion;
using LatentDiffusion.IO;
using LatentDiffusion.Pipelines;
using LatentDiffusion.Transformers;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Cli.Commands;

/// <summary>`ldm sample`: class- or text-conditional samples from a Transformer checkpoint, as PNGs and a grid (pixel space) or latents.</summary>
public static class SampleCommand
{
    public static Command Create()
    {
        var model = CommonOptions.Model("Denoiser checkpoint (.safetensors made by ldm train or ldm convert).");
        var classes = new Option<string?>("--classes", "-c") { Description = "Class models: class ids 3, 0,5,7, 0-11 or all (default all). Cycled to fill --num." };
        var prompt = new Option<string[]>("--prompt", "-p") { Description = "Text models: a caption to draw (repeat the option for several). Cycled to fill --num." };
        var promptsFile = new Option<string?>("--prompts-file") { Description = "Text models: a text file with one caption per line (blank lines skipped)." };
        var num = CommonOptions.Num("4 per listed class or prompt, at most 64");
        var guidance = new Option<double>("--guidance", "-g") { Description = "Classifier-free guidance scale (1 = none).", DefaultValueFactory = _ => 4.0 };
        var sampler = CommonOptions.Sampler();
        var steps = new Option<int>("--steps") { Description = "Sampling steps.", DefaultValueFactory = _ => 50 };
        var eta = new Option<double>("--eta") { Description = "DDIM eta (0 = deterministic).", DefaultValueFactory = _ => 0.0 };
        var seed = CommonOptions.Seed("noise");
        var batch = new Option<int>("--batch-size") { Description = "Images per model batch.", DefaultValueFactory = _ => 32 };
        var dtype = CommonOptions.Dtype("Compute dtype of the denoiser (bf16: bf16 weights and activations)", "float32", ScalarType.Float32, ScalarType.BFloat16);
        var output = CommonOptions.Out("Output folder.", "samples");
        var runtime = CommonOptions.Runtime();
        var columns = new Option<int?>("--columns") { Description = "Grid columns (default: one row per listed class when they fit)." };
        var autoencoder = new Option<string?>("--autoencoder", "-a") { Description = "Latent-space models: the autoencoder checkpoint (ldm train-autoencoder / ldm convert --kind autoencoder) that decodes the latents into PNGs (default: the one the model names, when it lies beside the model file)." };

        var command = new Command("sample", "Generate class- or text-conditional samples from a diffusion Transformer checkpoint (latent-space models: decoded with --autoencoder).")
        {
            model, classes, prompt, promptsFile, num, guidance, sampler, steps, eta, seed, batch, dtype, output, columns, autoencoder,
        };
        foreach (var o in runtime.All) command.Options.Add(o);
        command.SetAction(parse =>
        {
            // Kept in the parsed options for the pipeline's device support; sampling runs on the CPU until then.
            var device = runtime.Apply(parse);
            string modelPath = CliParsing.ExistingFile(parse.GetValue(model)!, "--model");
            var info = TransformerCheckpoint.PeekInfo(modelPath);
            var prompts = ReadPrompts(parse.GetValue(prompt), parse.GetValue(promptsFile));
            if (info.Transformer.IsTextConditional)
            {
                if (parse.GetValue(classes) != null)
                    throw new LdmException("this is a text-conditioned model; describe the images with --prompt \"...\" instead of --classes.");
                if (prompts.Count == 0)
                    throw new LdmException("this is a text-conditioned model; give at least one --prompt \"...\" (or --prompts-file).");
            }
            else if (prompts.Count > 0)
                throw new LdmException("this is a class-conditional model; choose classes with --classes instead of --prompt.");
            var ids = info.Transformer.IsTextConditional ? Enumerable.Range(0, prompts.Count).ToList()
                : CliParsing.ClassIds(parse.GetValue(classes), info.Transformer.NumClasses);
            int count = parse.GetValue(num) ?? Math.Min(64, ids.Count * 4);
            if (count < 1) throw new LdmException($"--num must be at least 1, got {count}.");
            var labels = Enumerable.Range(0, count).Select(i => ids[i % ids.Count]).OrderBy(c => ids.IndexOf(c)).ToList();
            var options = new SamplingOptions
            {
                Sampler = SamplerNames.Parse(parse.GetValue(sampler)),
                Steps = parse.GetValue(steps),
                Eta = parse.GetValue(eta),
                GuidanceScale = parse.GetValue(guidance),
                Seed = parse.GetValue(seed),
                BatchSize = parse.GetValue(batch),
                ComputeDtype = DtypeNames.Parse(parse.GetValue(dtype), ScalarType.Float32, ScalarType.BFloat16),
            };
            options.Validate();
            // Every listed id, not only those --num happens to use: a typo in --classes is an error either way.
            if (!info.Transformer.IsTextConditional)
                ClassConditionalSampler.CheckClasses(info, ids);
            // The autoencoder is loaded and checked against the denoiser before any sampling time is spent.
            string? aePath = parse.GetValue(autoencoder);
            if (aePath != null) CliParsing.ExistingFile(aePath, "--autoencoder");
            // A latent model names its autoencoder; found beside the model file, it decodes without --autoencoder.
            aePath ??= info.AutoencoderBeside(modelPath);
            using var decoder = aePath != null ? LatentDecoder.Load(aePath, info, modelPath, Math.Max(1, options.BatchSize)) : null;
            string outDir = CliParsing.OutputFolder(parse.GetValue(output)!, "--out");

            var (net, loadedInfo) = TransformerCheckpoint.Load(modelPath);
            using (net)
            {
                // Labels index the prompt list for a text model; every prompt is tokenized before sampling starts.
                var imagePrompts = loadedInfo.Transformer.IsTextConditional ? labels.Select(i => prompts[i]).ToList() : null;
                var textSampler = imagePrompts != null ? new TextConditionalSampler(net, loadedInfo) : null;
                if (textSampler != null) textSampler.Tokenize(prompts).Dispose();
                var classSampler = imagePrompts == null ? new ClassConditionalSampler(net, loadedInfo) : null;
                int totalSteps = (count + options.BatchSize - 1) / options.BatchSize * options.Steps;
                var clock = System.Diagnostics.Stopwatch.StartNew();
                using var modelSamples = ConsoleProgress.Run($"sampling {count} images", totalSteps, report =>
                {
                    Action<int, int, int> onStep = (doneImages, step, stepsPerBatch) =>
                        report(doneImages / options.BatchSize * stepsPerBatch + step + 1, $"({SamplerNames.Of(options.Sampler)}, {options.Steps} steps)");
                    return textSampler != null ? textSampler.Sample(imagePrompts!, options, onStep) : classSampler!.Sample(labels, options, onStep);
                });
                using var samples = decoder != null ? decoder.Decode(modelSamples) : modelSamples.alias();
                double seconds = clock.Elapsed.TotalSeconds;
                bool images = info.IsPixelSpace || decoder != null;
                int gridColumns = parse.GetValue(columns) ?? DefaultColumns(labels);
                var written = imagePrompts != null ? WriteTextOutputs(samples, imagePrompts, images, outDir, gridColumns)
                    : WriteOutputs(samples, labels, info, images, outDir, gridColumns);
                string decoded = decoder != null ? ", decoded by the autoencoder" : "";
                Console.WriteLine($"{count} samples in {seconds:F1} s ({count / seconds:F2} images/s{decoded}); wrote {written}");
            }
            return 0;
        });
        return command;
    }

    static int DefaultColumns(List<int> labels)
    {
        int distinct = labels.Distinct().Count();
        int perClass = labels.Count / Math.Max(1, distinct);
        return distinct > 1 && perClass * distinct == labels.Count && perClass <= 16 ? perClass : (int)Math.Ceiling(Math.Sqrt(labels.Count));
    }

    /// <summary>PNGs and a grid for images in [-1, 1]; a latents file for undecoded latent samples. Returns what was written.</summary>
    internal static string WriteOutputs(Tensor samples, List<int> labels, DenoiserInfo info, bool images, string outDir, int columns)
    {
        if (!images)
        {
            string path = Path.Combine(outDir, "latents.safetensors");
            using var labelTensor = torch.tensor(labels.Select(l => (long)l).ToArray());
            SafetensorsWriter.Write(path, new Dictionary<string, Tensor> { ["latents"] = samples, ["labels"] = labelTensor },
                new Dictionary<string, string> { ["ldm.space"] = "latent" });
            return $"{path} (latents; for PNGs run ldm sample again with --autoencoder <the autoencoder the model was trained with>)";
        }
        for (int i = 0; i < labels.Count; i++)
        {
            using var image = samples[i];
            string name = info.ClassNames.Count > labels[i] ? Sanitize(info.ClassNames[labels[i]]) : $"class{labels[i]}";
            ImageFile.Write(Path.Combine(outDir, $"{i:D5}_{labels[i]:D3}_{name}.png"), image);
        }
        string grid = Path.Combine(outDir, "grid.png");
        ImageGrid.Save(grid, samples, columns);
        return $"{labels.Count} PNGs and the grid {grid}";
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
            var lines = File.ReadAllLines(file).Where(l => !string.IsNullOrWhiteSpace(l)).Select(l => l.Trim()).ToList();
            if (lines.Count == 0) throw new LdmException($"--prompts-file '{file}' holds no prompts; write one caption per line.");
            all.AddRange(lines);
        }
        return all;
    }

    /// <summary>Text models: PNGs named by prompt, prompts.txt (one line per image) and a grid; a latents file for undecoded latent samples.</summary>
    internal static string WriteTextOutputs(Tensor samples, List<string> prompts, bool images, string outDir, int columns)
    {
        string promptsPath = Path.Combine(outDir, "prompts.txt");
        AtomicFile.WriteAllText(promptsPath, string.Join("\n", prompts) + "\n");
        if (!images)
        {
            string path = Path.Combine(outDir, "latents.safetensors");
            SafetensorsWriter.Write(path, new Dictionary<string, Tensor> { ["latents"] = samples },
                new Dictionary<string, string> { ["ldm.space"] = "latent", ["ldm.prompts"] = System.Text.Json.JsonSerializer.Serialize(prompts) });
            return $"{path} (latents; for PNGs run ldm sample again with --autoencoder <the autoencoder the model was trained with>) and {promptsPath}";
        }
        for (int i = 0; i < prompts.Count; i++)
        {
            using var image = samples[i];
            string name = Sanitize(prompts[i]);
            ImageFile.Write(Path.Combine(outDir, $"{i:D5}_{(name.Length > 60 ? name[..60] : name)}.png"), image);
        }
        string grid = Path.Combine(outDir, "grid.png");
        ImageGrid.Save(grid, samples, columns);
        return $"{prompts.Count} PNGs, {promptsPath} and the grid {grid}";
    }

    static string Sanitize(string name) => new(name.Select(ch => char.IsLetterOrDigit(ch) ? ch : '-').ToArray());
}
