using System.CommandLine;
using System.Text.Json.Nodes;
using LatentDiffusion.Autoencoders;
using LatentDiffusion.Cli.Grammar;
using LatentDiffusion.Cli.Plots;
using LatentDiffusion.Data;
using LatentDiffusion.Denoisers;
using LatentDiffusion.Diffusion;
using LatentDiffusion.IO;
using LatentDiffusion.Pipelines;
using LatentDiffusion.Text;
using LatentDiffusion.Training;
using LatentDiffusion.Transformers;
using LatentDiffusion.UNets;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Cli.Commands;

/// <summary>`ldm train`: train a class- or text-conditional diffusion Transformer on images (pixel space) or on the
/// latents of an autoencoder (latent space, from a cache or encoded on the way in).</summary>
public static class TrainCommand
{
    public sealed record ModelChoice(string Preset, BlockType Block, bool LongSkips, int? HiddenSize, int? Depth, int? NumHeads, int? PatchSize, bool LearnSigma,
        string Prediction = "eps", string Backbone = "transformer", UNetChoice? UNet = null, string NoiseSchedule = "linear", double? BetaStart = null,
        double? BetaEnd = null);

    /// <summary>UNet size (<c>--backbone unet</c>): a preset of <see cref="UNetPresets"/> and optional overrides.</summary>
    public sealed record UNetChoice(string Preset = "UNet-S", int? ModelChannels = null, int[]? ChannelMult = null, int? NumResBlocks = null,
        int[]? AttentionResolutions = null);

    /// <summary>Text conditioning settings: the tokenizer (word or gpt2), token positions (null = longest training caption), caption dropout,
    /// self-attention layers of the caption encoder.</summary>
    public sealed record TextChoice(string Tokenizer = "word", int? MaxTokens = null, double CaptionDropout = 0.1, int EncoderLayers = 0);

    public static Command Create()
    {
        var data = CommonOptions.Data("Training data (images, or a latent cache)", "shapes");
        var condition = new Option<string>("--condition") { Description = "class, text, or auto (text for shapes-text and captioned folders).", DefaultValueFactory = _ => "auto" };
        var tokenizer = new Option<string>("--text-tokenizer") { Description = "Text models: word (vocabulary of the training captions) or gpt2 (GPT-2 BPE).", DefaultValueFactory = _ => "word" };
        var maxTokens = new Option<int?>("--max-text-tokens") { Description = "Text models: token positions per caption (default: the longest training caption)." };
        var captionDropout = new Option<double>("--caption-dropout") { Description = "Text models: probability of training on the empty caption (for guidance).", DefaultValueFactory = _ => 0.1 };
        var encoderLayers = new Option<int>("--text-encoder-layers") { Description = "Text models: self-attention layers over the caption alone before it meets the image (0: word and position embeddings only). With layers each word can take in the rest of its phrase before the denoiser sees it, as LDM's BERT and U-ViT's CLIP (docs/text.md)." };
        var numImages = CommonOptions.Deprecated<int>("--num-images");
        var imageSize = new Option<int?>("--image-size") { Description = "Resize folder images to this size (default: 32)." };
        var channels = new Option<int?>("--channels") { Description = "1 (grayscale) or 3 (RGB) for folder images (default 3)." };
        var skipUnreadable = new Option<bool>("--skip-unreadable") { Description = "Skip (and count) unreadable images in a folder." };
        var output = CommonOptions.Out("Run folder (resumes if it holds a checkpoint).");
        var runtime = CommonOptions.Runtime();
        var autoencoder = new Option<string?>("--autoencoder", "-a") { Description = "Train in latent space: images are encoded once by this autoencoder into OUT/latents (not needed when --data is a latent cache made by ldm encode)." };
        var sampleSteps = new Option<int>("--sample-steps") { Description = $"Sampling steps of the training sample grids (samples_STEP.png, DDIM; default {DefaultSampleSteps}); fewer make the grids of a quick trial run cheap. Not part of the run's settings: a resume may change it.", DefaultValueFactory = _ => DefaultSampleSteps };
        var recipe = new Option<string?>("--recipe") { Description = "A recipe of recipes/ (shapes-class, shapes-text, fashion-mnist, emoji-text) or a recipe JSON file: its autoencoder and training settings; options given here override it." };
        var (modelOptions, readModel) = ModelOptions();
        var (trainOptions, readTrain) = TrainingOptions();
        var command = new Command("train", "Train a class- or text-conditional diffusion Transformer (or --backbone unet: an LDM UNet); resumes an interrupted run in the same --out folder.")
        {
            data, condition, tokenizer, maxTokens, captionDropout, encoderLayers, numImages, imageSize, channels, skipUnreadable, output, autoencoder, sampleSteps, recipe,
        };
        foreach (var o in modelOptions.Concat(trainOptions).Concat(runtime.All)) command.Options.Add(o);
        command.SetAction(parse =>
        {
            var options = readTrain(parse);
            options.Validate();
            int gridSteps = parse.GetValue(sampleSteps);
            if (gridSteps < 1) throw new LdmException($"--sample-steps must be at least 1, got {gridSteps}.");
            var model = readModel(parse);   // option mismatches (--block with --backbone unet, ...) fail before any data is read
            if (parse.GetValue(recipe) != null)
                throw new LdmException("--recipe is expanded before the options are read; pass it as `ldm train --recipe NAME --out DIR`.");
            var spec = DataSetSpec.Parse(parse.GetValue(data), "--data").Require("--data", "images or a latent cache",
                DataSetKind.Shapes, DataSetKind.ShapesText, DataSetKind.FashionMnist, DataSetKind.ImageFolder, DataSetKind.CaptionedFolder, DataSetKind.LatentCache);
            if (CommonOptions.ReadDeprecated(parse, numImages, "--data shapes:count={}", out int count) && spec.IsShapes && spec.Count is null)
                spec = spec with { Count = count };
            var device = runtime.Apply(parse);
            // A run that fails before it trains (unreadable data, a late option error) leaves no folder it created.
            return RunFolderGuard.Run(parse.GetValue(output)!, () =>
            {
                string runDir = CliParsing.OutputFolder(parse.GetValue(output)!, "--out");
                string dataSpec = spec.Text;
                // Under MPI rank 0 encodes a latent cache into the run folder first; the other ranks then read it.
                using var set = Ranks.MainFirst(() => TrainingSet.Load(spec, parse.GetValue(autoencoder), runDir, (size, ch) =>
                {
                    var images = DataSetLoader.Load(spec, DefaultShapesCount, options.Seed, parse.GetValue(imageSize) ?? size ?? 32, parse.GetValue(channels) ?? ch ?? 3,
                        parse.GetValue(skipUnreadable));
                    if (images.SkippedCount > 0) Console.WriteLine($"skipped {images.SkippedCount} unreadable images in {images.Source}");
                    return images;
                }));
                var text = IsTextCondition(parse.GetValue(condition)!, dataSpec, set)
                    ? new TextChoice(parse.GetValue(tokenizer)!, parse.GetValue(maxTokens), parse.GetValue(captionDropout), parse.GetValue(encoderLayers)) : null;
                var info = BuildInfo(model, set, text);
                Train(info, set, options, runDir, device: device, sampleSteps: gridSteps);
                return 0;
            });
        });
        return command;
    }

    /// <summary>Sampling steps of the training sample grids without <c>--sample-steps</c>.</summary>
    internal const int DefaultSampleSteps = 50;

    /// <summary>Images generated for <c>--data shapes</c> without a count.</summary>
    const int DefaultShapesCount = 20000;

    /// <summary>The images of a data-set spec (<see cref="DataSetSpec"/>), as `ldm train --data` reads them.</summary>
    internal static ImageDataset LoadData(string data, int? count, int? imageSize, int? channels, bool skipUnreadable, long seed)
    {
        var spec = DataSetSpec.Parse(data, "--data");
        return DataSetLoader.Load(spec, count ?? DefaultShapesCount, seed, imageSize ?? 32, channels ?? 3, skipUnreadable);
    }

    /// <summary>--condition: class, text, or auto (text when the data has captions and is not the class form of shapes).</summary>
    internal static bool IsTextCondition(string condition, string data, ImageDataset dataset) =>
        IsTextCondition(condition, data, TrainingSet.Pixels(dataset, owns: false));

    internal static bool IsTextCondition(string condition, string data, TrainingSet set) => condition.Trim().ToLowerInvariant() switch
    {
        "text" => true,
        "class" => false,
        // The class form of shapes carries captions too; labels win there (also for a latent cache made from it).
        "auto" => set.HasCaptions && !data.Split(':')[0].Trim().Equals("shapes", StringComparison.OrdinalIgnoreCase) && !set.Source.Contains("shapes(class", StringComparison.Ordinal),
        _ => throw new LdmException($"--condition '{condition}' is unknown; use class, text or auto."),
    };

    /// <summary>The model to train: a class model, or with <paramref name="text"/> a text model whose tokenizer is built from the data's captions.</summary>
    internal static DenoiserInfo BuildInfo(ModelChoice m, ImageDataset dataset, TextChoice? text = null) =>
        BuildInfo(m, TrainingSet.Pixels(dataset, owns: false), text);

    internal static DenoiserInfo BuildInfo(ModelChoice m, TrainingSet dataset, TextChoice? text = null)
    {
        ITextTokenizer? tokenizer = null;
        TextConditionConfig? textConfig = null;
        if (text != null)
        {
            if (!dataset.HasCaptions)
                throw new LdmException($"the data in '{dataset.Source}' has no captions, so no text model can be trained on it; use --data shapes-text, a folder with a metadata.jsonl of captions, or --condition class.");
            (textConfig, tokenizer) = TextConditionConfig.ForCaptions(dataset.Captions, text.Tokenizer, text.MaxTokens, text.CaptionDropout, text.EncoderLayers);
        }
        else if (!dataset.HasLabels || dataset.NumClasses < 1)
            throw new LdmException($"the data in '{dataset.Source}' has no class labels; use a folder with one subfolder per class{(dataset.HasCaptions ? ", or --condition text for its captions" : "")}.");
        IBackboneConfig backbone = ParseBackbone(m.Backbone) == UNetConfig.BackboneKind
            ? BuildUNet(m.UNet ?? new UNetChoice(), m.LearnSigma, dataset, textConfig)
            : BuildTransformer(m, dataset, textConfig);
        var diffusion = DiffusionFor(m);
        return new DenoiserInfo(backbone, diffusion, dataset.IsLatent ? DataSpace.Latent : DataSpace.Pixel,
            textConfig is null ? dataset.ClassNames.ToList() : [])
        {
            Tokenizer = tokenizer,
            Autoencoder = dataset.AutoencoderPath is { } ae ? Path.GetFileName(ae) : null,
            // What the training grids use; `ldm export --guidance/--sampler/--steps` changes it once the model is measured.
            Sampling = RecommendedSampling.For(backbone),
        };
    }

    /// <summary>--backbone: transformer or unet (the backbone kind names).</summary>
    internal static string ParseBackbone(string s) => s.Trim().ToLowerInvariant() switch
    {
        "transformer" or "dit" => "transformer",
        "unet" => UNetConfig.BackboneKind,
        _ => throw new LdmException($"--backbone '{s}' is unknown; use transformer or unet."),
    };

    /// <summary>A UNet of a preset (with overrides) for the data: input from the data, labels or captions, learned sigma.</summary>
    static UNetConfig BuildUNet(UNetChoice u, bool learnSigma, TrainingSet dataset, TextConditionConfig? textConfig)
    {
        var cfg = UNetPresets.Create(u.Preset, dataset.Size, dataset.Channels, textConfig is null ? dataset.NumClasses : 0, learnSigma, textConfig);
        int mc = u.ModelChannels ?? cfg.ModelChannels;
        return (cfg with
        {
            ModelChannels = mc,
            ChannelMult = u.ChannelMult ?? cfg.ChannelMult,
            NumResBlocks = u.NumResBlocks ?? cfg.NumResBlocks,
            AttentionResolutions = u.AttentionResolutions ?? cfg.AttentionResolutions,
            ContextDim = textConfig is null ? null : mc,
        }).Validate();
    }

    static TransformerConfig BuildTransformer(ModelChoice m, TrainingSet dataset, TextConditionConfig? textConfig)
    {
        var cfg = TransformerConfig.FromPreset(m.Preset, dataset.Size, dataset.Channels, textConfig is null ? dataset.NumClasses : 0, m.Block, m.LearnSigma,
            longSkips: m.LongSkips, patchSize: m.PatchSize);
        cfg = (cfg with
        {
            HiddenSize = m.HiddenSize ?? cfg.HiddenSize,
            Depth = m.Depth ?? cfg.Depth,
            NumHeads = m.NumHeads ?? cfg.NumHeads,
            PatchSize = m.PatchSize ?? cfg.PatchSize,
            Text = textConfig,
            ClassDropoutProb = textConfig is null ? cfg.ClassDropoutProb : 0.0,   // a text model has no label table
        }).Validate();
        return cfg;
    }

    /// <summary>One line about a backbone's architecture, for `ldm train` and `ldm bench` (input and parameters are added by the caller).</summary>
    internal static string Describe(IBackboneConfig backbone) => backbone switch
    {
        TransformerConfig c => $"{c.Block} transformer{(c.LongSkips ? " with long skips" : "")}, hidden {c.HiddenSize}, depth {c.Depth}, heads {c.NumHeads}, patch {c.PatchSize}",
        UNetConfig u => $"unet, {u.ChannelMult.Length} levels of {string.Join("/", u.ChannelMult.Select(x => x * u.ModelChannels))} channels, "
            + $"{u.NumResBlocks} res blocks per level, {(u.UseSpatialTransformer ? "cross-attention" : "self-attention")} at "
            + (u.AttentionResolutions.Length == 0 ? "the middle only" : string.Join(", ", u.AttentionResolutions.Order().Select(r => $"1/{r}")) + " and the middle")
            + $" ({(u.NumHeadChannels == -1 ? $"{u.NumHeads} heads" : $"{u.NumHeadChannels}-channel heads")})",
        _ => backbone.Kind,
    };

    /// <summary>Runs (or resumes) training with a progress bar and sample grids in the run folder.</summary>
    /// <param name="sampleGrids">Write sample grids (every --sample-every steps and at the end) into the run folder.</param>
    /// <param name="sampleSteps">Sampling steps of each grid (--sample-steps).</param>
    internal static void Train(DenoiserInfo info, ImageDataset dataset, DiffusionTrainingOptions options, string runDir, int gridPerClass = 4,
        bool sampleGrids = true, Device? device = null, int sampleSteps = DefaultSampleSteps) =>
        Train(info, TrainingSet.Pixels(dataset, owns: false), options, runDir, gridPerClass, sampleGrids, device, sampleSteps);

    internal static void Train(DenoiserInfo info, TrainingSet dataset, DiffusionTrainingOptions options, string runDir, int gridPerClass = 4,
        bool sampleGrids = true, Device? device = null, int sampleSteps = DefaultSampleSteps)
    {
        var cfg = info.Backbone;
        long parameters = 0;
        // Under mpiexec every rank trains on its share of each batch; rank 0 alone writes the run folder.
        var world = Ranks.World;
        using var trainer = new DiffusionTrainer(info, dataset.Data, options, runDir, device, world);
        if (trainer.IsFinished)
        {
            Console.WriteLine($"{runDir} is already finished at step {trainer.Step}; pass a larger --steps to continue it");
            return;
        }
        // Latent models: sample grids are decoded by the autoencoder, which also goes into the run folder beside the
        // model, so model.safetensors samples to PNGs on its own (the checkpoint names it).
        using var autoencoder = dataset.AutoencoderPath is { } aePath ? AutoencoderKL.Load(aePath) : null;
        autoencoder?.to(trainer.Device);
        if (world.IsMain && dataset.AutoencoderPath is { } src && info.Autoencoder is { } name)
        {
            string beside = Path.Combine(runDir, name);
            if (Path.GetFullPath(beside) != Path.GetFullPath(src)) AtomicFile.Copy(src, beside);
        }
        foreach (var p in trainer.Model.parameters()) parameters += p.numel();
        string conditioning = cfg.Text is { } t
            ? $"captions ({t.Tokenizer} tokenizer, {t.VocabSize} tokens, {t.MaxTokens} positions, caption dropout {t.DropoutProb}{(t.EncoderLayers > 0 ? $", {t.EncoderLayers} encoder layers" : "")})"
            : $"{dataset.NumClasses} classes";
        string prediction = info.Diffusion.PredictV ? "v" : info.Diffusion.PredictXstart ? "x0" : "eps";
        var cost = ModelCost.Of(cfg);
        Console.WriteLine($"model: {Describe(cfg)} on {info.Space.ToString().ToLowerInvariant()} {cfg.InputSize}x{cfg.InputSize}x{cfg.InChannels} ({parameters / 1e6:F2}M parameters; {ModelCost.FormatFlops(cost.ForwardFlops)} forward per image, {ModelCost.FormatFlops(cost.TrainingFlopsPerImage * options.BatchSize)} per training step of {options.BatchSize}), predicts {prediction}{(cfg.LearnSigma ? " and sigma" : "")} on {ScheduleText(info.Diffusion)}; data: {dataset.Count} {(dataset.IsLatent ? "latents" : "images")}, {conditioning} from {dataset.Source}");
        Console.WriteLine(DtypeNames.Chosen(options.Dtype, trainer.ComputeDtype, trainer.Device));
        if (trainer.ResumedFromStep is long from) Console.WriteLine($"resuming {runDir} at step {from}");
        if (ChangedSettingsNote(trainer.ChangedSettings) is { } note) Console.WriteLine(note);
        if (world.Size > 1) Console.WriteLine($"data parallel: {world.Size} ranks, {options.BatchSize / world.Size} examples each per step of {options.BatchSize}, {torch.get_num_threads()} libtorch threads on rank 0");
        var sampling = new SamplingOptions { Steps = sampleSteps, GuidanceScale = cfg.HasUnconditionalInput ? 4.0 : 1.0, Seed = options.Seed, BatchSize = 64 };
        string? lastGrid = null;
        if (sampleGrids) trainer.OnSample = (step, ema) =>
        {
            using var pipe = DiffusionPipeline.FromModels(ema, info, autoencoder);
            string grid = Path.Combine(runDir, $"samples_{step:D7}.png");
            if (cfg.Text is not null)
            {
                // A grid of the first distinct training captions, gridPerClass images each (one row per caption).
                var prompts = dataset.Captions.Where(c => !string.IsNullOrWhiteSpace(c)).Distinct().Take(Math.Max(1, 64 / gridPerClass))
                    .SelectMany(c => Enumerable.Repeat(c!, gridPerClass)).ToList();
                using var textImages = pipe.Generate(prompts, sampling);
                textImages.SaveGrid(grid, gridPerClass);
                lastGrid = grid;
                return;
            }
            var labels = Enumerable.Range(0, cfg.NumClasses).SelectMany(c => Enumerable.Repeat(c, gridPerClass)).Take(64).ToList();
            using var images = pipe.Generate(labels, sampling);
            images.SaveGrid(grid, gridPerClass);
            lastGrid = grid;
        };
        ConsoleProgress.Run("training", options.Steps, report =>
        {
            try { trainer.Run(p => report(p.Step, $"loss {p.Loss:F4}, {p.StepsPerSecond:F2} steps/s")); }
            catch (TrainingDivergedException e) { throw new LdmException(e.WithAdvice("Lower --lr, add --grad-clip 1, or use float32."), e); }
            return 0;
        });
        if (!world.IsMain) return;
        string metrics = Path.Combine(runDir, DiffusionTrainer.MetricsFile);
        string curve = Path.Combine(runDir, "loss.png");
        LossCurvePlot.Save(curve, [(Path.GetFileName(Path.GetFullPath(runDir)), metrics)], "training loss");
        Console.WriteLine($"model (EMA weights): {Path.Combine(runDir, DiffusionTrainer.ModelFile)}; metrics: {metrics}; loss curve: {curve}");
        if (lastGrid is not null)
            Console.WriteLine($"sample grid: {lastGrid} ({SamplerNames.Of(sampling.Sampler)}, {sampling.Steps} steps, guidance {sampling.GuidanceScale:G})");
    }

    /// <summary>The noise schedule in words: <c>the linear schedule</c>, <c>the scaled-linear schedule (betas 0.0015 to 0.0195)</c>.</summary>
    static string ScheduleText(DiffusionConfig d) =>
        $"the {d.Schedule} schedule" + (d.BetaStart is { } start && d.BetaEnd is { } end
            ? string.Create(System.Globalization.CultureInfo.InvariantCulture, $" (betas {start} to {end})") : "");

    /// <summary>
    /// The diffusion process of a new model: DiT's 1000 steps with the chosen prediction target, variance and noise
    /// schedule; a scaled-linear schedule is stored with both ends written out. Bad schedule settings are
    /// <see cref="LdmOptionException"/>s that read as --noise-schedule, --beta-start, --beta-end.
    /// </summary>
    internal static DiffusionConfig DiffusionFor(ModelChoice m)
    {
        var target = m.Prediction.Trim().ToLowerInvariant() switch
        {
            "eps" or "epsilon" => new DiffusionConfig { LearnSigma = m.LearnSigma },
            "v" or "v-prediction" or "v_prediction" => new DiffusionConfig { LearnSigma = m.LearnSigma, PredictV = true },
            "x0" or "sample" or "xstart" => new DiffusionConfig { LearnSigma = m.LearnSigma, PredictXstart = true },
            _ => throw new LdmException($"--prediction '{m.Prediction}' is unknown; use eps (DiT's), v or x0."),
        };
        return (target with { Schedule = m.NoiseSchedule, BetaStart = m.BetaStart, BetaEnd = m.BetaEnd }).WithExplicitSchedule();
    }

    internal static (Option[] options, Func<System.CommandLine.ParseResult, ModelChoice> read) ModelOptions()
    {
        var preset = new Option<string>("--preset") { Description = "DiT size: S/2 ... XL/8.", DefaultValueFactory = _ => "S/4" };
        var block = new Option<string>("--block") { Description = "in-context (the paper's), adaln-zero (DiT), cross-attention or joint-attention (MM-DiT, as SD3).", DefaultValueFactory = _ => "in-context" };
        var longSkips = new Option<bool>("--long-skips") { Description = "U-ViT long skip connections (in-context only)." };
        var hidden = new Option<int?>("--hidden-size") { Description = "Override the preset's width." };
        var depth = new Option<int?>("--depth") { Description = "Override the preset's depth." };
        var heads = new Option<int?>("--num-heads") { Description = "Override the preset's head count." };
        var patch = new Option<int?>("--patch-size") { Description = "Override the preset's patch size." };
        var noSigma = new Option<bool>("--no-learn-sigma") { Description = "Fixed variance and plain ε-MSE loss instead of DiT's learned sigma." };
        var prediction = new Option<string>("--prediction") { Description = "What the model predicts: eps (DiT's noise), v (velocity) or x0.", DefaultValueFactory = _ => "eps" };
        var backbone = new Option<string>("--backbone") { Description = "The denoiser: transformer (sized by --preset ...) or unet (the LDM UNet, sized by --unet-preset ...).", DefaultValueFactory = _ => "transformer" };
        var schedule = new Option<string>("--noise-schedule") { Description = $"Beta schedule: linear (DiT's), cosine (improved DDPM) or {Diffusion.NoiseSchedule.ScaledLinearName} (LDM's and Stable Diffusion's; ends from --beta-start, --beta-end).", DefaultValueFactory = _ => "linear" };
        var betaStart = new Option<double?>("--beta-start") { Description = $"{Diffusion.NoiseSchedule.ScaledLinearName} only: the first beta (default {Diffusion.NoiseSchedule.ScaledLinearDefaultStart}, LDM's; Stable Diffusion: 0.00085)." };
        var betaEnd = new Option<double?>("--beta-end") { Description = $"{Diffusion.NoiseSchedule.ScaledLinearName} only: the last beta (default {Diffusion.NoiseSchedule.ScaledLinearDefaultEnd}, LDM's; Stable Diffusion: 0.012)." };
        var unetPreset = new Option<string>("--unet-preset") { Description = $"UNet size ({string.Join(", ", UNetPresets.Names)}; --backbone unet).", DefaultValueFactory = _ => "UNet-S" };
        var modelChannels = new Option<int?>("--model-channels") { Description = "UNet: override the preset's base width (a multiple of 32)." };
        var channelMult = new Option<string?>("--channel-mult") { Description = "UNet: override the preset's width per level, e.g. 1,2,4 (one level per entry)." };
        var numResBlocks = new Option<int?>("--num-res-blocks") { Description = "UNet: override the preset's residual blocks per level." };
        var attnRes = new Option<string?>("--attention-resolutions") { Description = "UNet: override the downsampling factors with attention, e.g. 2,4 (none: the middle block only)." };
        Option[] transformerOnly = [preset, block, longSkips, hidden, depth, heads, patch];
        Option[] unetOnly = [unetPreset, modelChannels, channelMult, numResBlocks, attnRes];
        return ([preset, block, longSkips, hidden, depth, heads, patch, noSigma, prediction, schedule, betaStart, betaEnd, backbone, unetPreset, modelChannels, channelMult, numResBlocks, attnRes], p =>
        {
            bool unet = ParseBackbone(p.GetValue(backbone)!) == UNetConfig.BackboneKind;
            static bool Given(System.CommandLine.ParseResult p, Option o) => p.GetResult(o) is { Implicit: false };
            if (unet && transformerOnly.FirstOrDefault(o => Given(p, o)) is { } t)
                throw new LdmException($"{t.Name} applies to the Transformer, not to --backbone unet; size a UNet with --unet-preset, --model-channels, --channel-mult, --num-res-blocks, --attention-resolutions.");
            if (!unet && unetOnly.FirstOrDefault(o => Given(p, o)) is { } u)
                throw new LdmException($"{u.Name} applies to the UNet; add --backbone unet, or size the Transformer with --preset, --hidden-size, --depth, --num-heads, --patch-size.");
            if (unet) UNetPresets.Get(p.GetValue(unetPreset)!);   // an unknown preset fails before the data is read
            var choice = new ModelChoice(
                p.GetValue(preset)!, ParseBlock(p.GetValue(block)!), p.GetValue(longSkips), p.GetValue(hidden), p.GetValue(depth),
                p.GetValue(heads), p.GetValue(patch), !p.GetValue(noSigma), p.GetValue(prediction)!,
                unet ? UNetConfig.BackboneKind : "transformer",
                unet ? new UNetChoice(p.GetValue(unetPreset)!, p.GetValue(modelChannels), IntList(p.GetValue(channelMult), "--channel-mult"),
                    p.GetValue(numResBlocks), IntList(p.GetValue(attnRes), "--attention-resolutions")) : null,
                p.GetValue(schedule)!, p.GetValue(betaStart), p.GetValue(betaEnd));
            DiffusionFor(choice);   // a bad prediction target or schedule fails before the data is read
            return choice;
        });
    }

    /// <summary>A comma-separated list of integers (null: not given; "none" or empty: an empty list).</summary>
    static int[]? IntList(string? text, string option)
    {
        if (text is null) return null;
        string t = text.Trim().Trim('[', ']');
        if (t.Length == 0 || t.Equals("none", StringComparison.OrdinalIgnoreCase)) return [];
        var parts = t.Split(',', StringSplitOptions.TrimEntries);
        var values = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!int.TryParse(parts[i], System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out values[i]))
                throw new LdmException($"{option} '{text}' is not a comma-separated list of integers; write e.g. 1,2,4.");
        return values;
    }

    internal static BlockType ParseBlock(string s) => s.Trim().ToLowerInvariant().Replace('_', '-') switch
    {
        "in-context" or "incontext" => BlockType.InContext,
        "adaln-zero" or "adaln" or "dit" => BlockType.AdaLnZero,
        "cross-attention" or "cross" => BlockType.CrossAttention,
        "joint-attention" or "mm-dit" or "mmdit" => BlockType.JointAttention,
        _ => throw new LdmException($"--block '{s}' is unknown; use in-context, adaln-zero, cross-attention or joint-attention."),
    };

    internal static (Option[] options, Func<System.CommandLine.ParseResult, DiffusionTrainingOptions> read) TrainingOptions()
    {
        var steps = new Option<int>("--steps") { Description = "Training steps.", DefaultValueFactory = _ => 10000 };
        var batch = new Option<int>("--batch-size") { Description = "Batch size.", DefaultValueFactory = _ => 64 };
        var lr = new Option<double>("--lr") { Description = "AdamW learning rate.", DefaultValueFactory = _ => 1e-4 };
        var wd = new Option<double>("--weight-decay") { Description = "AdamW weight decay.", DefaultValueFactory = _ => 0.0 };
        var warmup = new Option<int>("--warmup") { Description = "Learning-rate warm-up: steps of linear increase from 0.", DefaultValueFactory = _ => 0 };
        var clip = new Option<double>("--grad-clip") { Description = "Gradient-norm clip (0 = off).", DefaultValueFactory = _ => 0.0 };
        var ema = new Option<double>("--ema-decay") { Description = "EMA decay.", DefaultValueFactory = _ => 0.9999 };
        var seed = CommonOptions.Seed("initial weights, data order, noise, generated shapes");
        var dtype = CommonOptions.ComputeDtype("Compute dtype (bf16: bf16 forward and backward, float32 master weights)", ScalarType.Float32, ScalarType.BFloat16);
        var bf16 = CommonOptions.Deprecated<bool>("--bf16");
        var flip = new Option<bool>("--flip") { Description = "Random horizontal flips." };
        var logEvery = new Option<int>("--log-every") { Description = "Metrics log interval (steps).", DefaultValueFactory = _ => 10 };
        var ckptEvery = new Option<int>("--checkpoint-every") { Description = "Checkpoint interval (steps).", DefaultValueFactory = _ => 1000 };
        var sampleEvery = new Option<int>("--sample-every") { Description = "Sample-grid interval (steps; 0 = at the end only).", DefaultValueFactory = _ => 0 };
        var allowChanged = AllowChangedSettingsOption();
        return ([steps, batch, lr, wd, warmup, clip, ema, seed, dtype, bf16, flip, logEvery, ckptEvery, sampleEvery, allowChanged], p => new DiffusionTrainingOptions
        {
            Steps = p.GetValue(steps), BatchSize = p.GetValue(batch), LearningRate = p.GetValue(lr), WeightDecay = p.GetValue(wd),
            WarmupSteps = p.GetValue(warmup), GradClip = p.GetValue(clip), EmaDecay = p.GetValue(ema), Seed = p.GetValue(seed),
            Dtype = CommonOptions.ReadDeprecated(p, bf16, "--dtype bf16", out bool old) && old
                ? LatentDiffusion.ComputeDtype.BFloat16 : DtypeNames.ParseCompute(p.GetValue(dtype), ScalarType.Float32, ScalarType.BFloat16),
            HorizontalFlip = p.GetValue(flip), LogEvery = p.GetValue(logEvery),
            CheckpointEvery = p.GetValue(ckptEvery), SampleEvery = p.GetValue(sampleEvery), AllowChangedSettings = p.GetValue(allowChanged),
        });
    }

    /// <summary>--allow-changed-settings of `ldm train` and `ldm train-autoencoder`.</summary>
    internal static Option<bool> AllowChangedSettingsOption() => new(OptionNames.AllowChangedSettings)
    {
        Description = "Resume a run with settings other than it was started with (learning rate, batch size, model, data size, ...); the changes are printed. "
            + "Without it such a resume is refused. Not needed for a larger --steps, the intervals, --dtype or --sample-steps.",
    };

    /// <summary>The line that says a resume goes on with changed settings, or null when none changed.</summary>
    internal static string? ChangedSettingsNote(IReadOnlyList<RunSettingChange> changes) => changes.Count == 0 ? null
        : $"note: {OptionNames.AllowChangedSettings}: the run goes on with changed settings: {string.Join(", ", changes.Select(c => c.Describe(OptionNames.NameOf(c))))}";
}
