using System.CommandLine;
using System.Text.Json.Nodes;
using LatentDiffusion.Cli.Grammar;
using LatentDiffusion.Diagnostics;
using LatentDiffusion.Denoisers;
using LatentDiffusion.Diffusion;
using LatentDiffusion.Pipelines;
using LatentDiffusion.Training;
using LatentDiffusion.Transformers;
using LatentDiffusion.UNets;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Cli.Commands;

/// <summary>
/// `ldm bench`: training steps per second (forward, backward, AdamW step) and sampling images per second for a preset,
/// batch size and dtype, as the median of several timed runs after warm-up, with the peak resident memory. With
/// bf16 it also reports how far the bf16 model's outputs are from float32's on the same input. Every run prints the
/// model's cost per image (<see cref="ModelCost"/>: parameters, forward and training FLOPs), a UNet beside the
/// Transformer preset it is sized against; <c>--only cost</c> prints just that, without building anything.
/// </summary>
public static class BenchCommand
{
    public static Command Create()
    {
        var preset = new Option<string>("--preset") { Description = "Transformer preset (S/2 ... XL/8).", DefaultValueFactory = _ => "S/2" };
        var backbone = new Option<string>("--backbone") { Description = "transformer (sized by --preset, --block) or unet (sized by --unet-preset).", DefaultValueFactory = _ => "transformer" };
        var unetPreset = new Option<string>("--unet-preset") { Description = $"UNet preset ({string.Join(", ", UNetPresets.Names)}) for --backbone unet.", DefaultValueFactory = _ => "UNet-S" };
        var block = new Option<string>("--block") { Description = "in-context, adaln-zero, cross-attention or joint-attention.", DefaultValueFactory = _ => "in-context" };
        var inputSize = new Option<int>("--input-size") { Description = "Latent (or image) size; 32 = 256x256 images through an f=8 autoencoder.", DefaultValueFactory = _ => 32 };
        var channels = new Option<int>("--channels") { Description = "Input channels (4 for SD latents).", DefaultValueFactory = _ => 4 };
        var numClasses = new Option<int>("--num-classes") { Description = "Classes of the benchmarked model.", DefaultValueFactory = _ => 1000 };
        var classes = CommonOptions.Deprecated<int>("--classes");
        var batch = new Option<int>("--batch-size", "-b") { Description = "Batch size.", DefaultValueFactory = _ => 8 };
        var dtype = CommonOptions.Dtype("Compute dtype (bf16: mixed-precision training, bf16 sampling)", "float32", ScalarType.Float32, ScalarType.BFloat16);
        var warmupRuns = new Option<int>("--warmup-runs") { Description = "Untimed runs before the timed ones.", DefaultValueFactory = _ => 2 };
        var warmup = CommonOptions.Deprecated<int>("--warmup");
        var runs = new Option<int>("--runs") { Description = "Timed runs (the median is reported).", DefaultValueFactory = _ => 5 };
        var sampleSteps = new Option<int>("--sample-steps") { Description = "DDIM steps per timed sampling run.", DefaultValueFactory = _ => 10 };
        var guidance = new Option<double>("--guidance") { Description = "Guidance scale while sampling (not 1: doubled batch).", DefaultValueFactory = _ => 4.0 };
        var runtime = CommonOptions.Runtime();
        var model = new Option<string?>("--model") { Description = "Bench the architecture and diffusion of this class-model checkpoint (e.g. a study's run) instead of a preset." };
        var only = new Option<string>("--only") { Description = "train, sample, both, or cost (parameters and FLOPs per image only: nothing is built or timed).", DefaultValueFactory = _ => "both" };
        var command = new Command("bench", "Measure training and sampling throughput and peak memory for a model preset.")
        {
            backbone, preset, block, unetPreset, inputSize, channels, numClasses, classes, batch, dtype, warmupRuns, warmup, runs, sampleSteps, guidance, only, model,
        };
        foreach (var o in runtime.All) command.Options.Add(o);
        command.SetAction(parse =>
        {
            var device = runtime.Apply(parse);
            var computeDtype = DtypeNames.Parse(parse.GetValue(dtype), ScalarType.Float32, ScalarType.BFloat16);
            int nWarm = CommonOptions.ReadDeprecated(parse, warmup, "--warmup-runs {}", out int oldWarm) ? oldWarm : parse.GetValue(warmupRuns);
            int nClasses = CommonOptions.ReadDeprecated(parse, classes, "--num-classes {}", out int oldClasses) ? oldClasses : parse.GetValue(numClasses);
            int b = parse.GetValue(batch), nRuns = parse.GetValue(runs), steps = parse.GetValue(sampleSteps);
            if (b < 1 || nWarm < 0 || nRuns < 1 || steps < 1) throw new LdmException("--batch-size, --runs and --sample-steps must be at least 1 and --warmup-runs at least 0.");
            string what = parse.GetValue(only)!.ToLowerInvariant();
            if (what is not ("train" or "sample" or "both" or "cost")) throw new LdmException($"--only '{what}' is unknown; use train, sample, both or cost.");
            static bool Given(System.CommandLine.ParseResult p, Option o) => p.GetResult(o) is { Implicit: false };
            if (parse.GetValue(model) is { } modelPath)
            {
                if (new Option[] { backbone, preset, block, unetPreset, inputSize, channels, numClasses }.FirstOrDefault(o => Given(parse, o)) is { } sized)
                    throw new LdmException($"{sized.Name} sizes a preset; --model benches the architecture of its checkpoint, so drop {sized.Name}.");
                var saved = DenoiserCheckpoint.PeekInfo(CliParsing.ExistingFile(modelPath, "--model"));
                if (saved.Condition != ConditionKind.Class || saved.Backbone.NumClasses < 1)
                    throw new LdmException($"--model '{modelPath}' is not a class model; ldm bench measures class models (give a class model or a preset).");
                if (what == "cost")
                {
                    PrintCost(saved.Backbone, null);
                    return 0;
                }
                Print(Run(saved, b, computeDtype, nWarm, nRuns, steps, parse.GetValue(guidance), what, device), null);
                return 0;
            }
            bool unet = TrainCommand.ParseBackbone(parse.GetValue(backbone)!) == UNetConfig.BackboneKind;
            if (unet && new Option[] { preset, block }.FirstOrDefault(o => Given(parse, o)) is { } t)
                throw new LdmException($"{t.Name} applies to the Transformer, not to --backbone unet; size the UNet with --unet-preset.");
            if (!unet && Given(parse, unetPreset))
                throw new LdmException("--unet-preset applies to the UNet; add --backbone unet, or size the Transformer with --preset.");
            IBackboneConfig cfg = unet
                ? UNetPresets.Create(parse.GetValue(unetPreset)!, parse.GetValue(inputSize), parse.GetValue(channels), nClasses).Validate()
                : TransformerConfig.FromPreset(parse.GetValue(preset)!, parse.GetValue(inputSize), parse.GetValue(channels), nClasses,
                    TrainCommand.ParseBlock(parse.GetValue(block)!));
            // A UNet is shown beside the Transformer preset it is sized against, on the same input (default in-context block).
            var peer = unet
                ? TransformerConfig.FromPreset(UNetPresets.SizedLike(parse.GetValue(unetPreset)!), parse.GetValue(inputSize), parse.GetValue(channels), nClasses)
                : null;
            if (what == "cost")
            {
                PrintCost(cfg, peer);
                return 0;
            }
            var info = new DenoiserInfo(cfg, new DiffusionConfig { LearnSigma = cfg.LearnSigma }, DataSpace.Latent, []);
            var result = Run(info, b, computeDtype, nWarm, nRuns, steps, parse.GetValue(guidance), what, device);
            Print(result, peer);
            return 0;
        });
        return command;
    }

    public sealed record BenchResult(IBackboneConfig Config, long Parameters, int Batch, string Dtype, int Threads, string? Allocator,
        double? TrainStepsPerSec, double[]? TrainTimes, double? SampleImagesPerSec, int SampleSteps, double GuidanceScale, double[]? SampleTimes,
        double? Bf16MaxAbsDiff, double? Bf16RelDiff, double? Bf16SampleMaxAbsDiff, double? SampleMaxAbs, long PeakRssBytes);

    public static BenchResult Run(DenoiserInfo info, int batch, ScalarType dtype, int warmup, int runs, int sampleSteps, double guidance, string what,
        Device? device = null)
    {
        var cfg = info.Backbone;
        using var model = cfg.Build(seed: 1);
        model.to(device ?? torch.CPU);
        long parameters = model.parameters().Sum(p => p.numel());
        double? trainSps = null, sampleIps = null, maxDiff = null, relDiff = null, sampleDiff = null, sampleMax = null;
        double[]? trainTimes = null, sampleTimes = null;

        if (what is "train" or "both")
        {
            // The trainer's own step: diffusion loss, backward, AdamW, EMA; (seed, step) randomness.
            string runDir = Path.Combine(Path.GetTempPath(), $"ldm-bench-{Environment.ProcessId}");
            var data = new RandomLatents(cfg, Math.Max(batch * 4, 64));
            var options = new DiffusionTrainingOptions { Steps = int.MaxValue, BatchSize = batch, Bf16 = dtype == ScalarType.BFloat16, LogEvery = int.MaxValue, CheckpointEvery = int.MaxValue };
            try
            {
                using var trainer = new DiffusionTrainer(info, data, options, runDir, device);
                var (median, times) = Timing.Median(() => trainer.RunSteps(1), warmup, runs);
                trainSps = 1.0 / median; trainTimes = times;
            }
            finally { try { Directory.Delete(runDir, true); } catch (IOException) { } }
        }
        if (what is "sample" or "both")
        {
            using var pipe = DiffusionPipeline.FromModels(model, info, dtype: dtype);
            var labels = Enumerable.Range(0, batch).Select(i => i % cfg.NumClasses).ToList();
            var options = new SamplingOptions { Steps = sampleSteps, GuidanceScale = guidance, BatchSize = batch, Seed = 7 };
            var (median, times) = Timing.Median(() => { using var s = pipe.Generate(labels, options); }, Math.Min(warmup, 1), runs);
            sampleIps = batch / median; sampleTimes = times;
            if (dtype == ScalarType.BFloat16)
            {
                using var scope = torch.NewDisposeScope();
                using var _ = torch.no_grad();
                var g = new Generator(3);
                var dev = device ?? torch.CPU;
                var x = torch.randn([batch, cfg.InChannels, cfg.InputSize, cfg.InputSize], generator: g).to(dev);
                var t = torch.randint(0, 1000, [batch], generator: g).to(dev);
                var y = torch.tensor(labels.Select(l => (long)l).ToArray(), device: dev);
                RandomizeZeroInit(model, g);
                var reference = model.forward(x, t, y);
                using var low = cfg.Build();
                low.to(dev);
                IO.StateDict.Load(low, model.state_dict(), "bench");
                low.to(ScalarType.BFloat16);
                var lowOut = low.forward(x, t, y);
                maxDiff = (lowOut - reference).abs().max().item<float>();
                relDiff = maxDiff / reference.abs().max().item<float>();
                using var f32Pipe = DiffusionPipeline.FromModels(model, info);
                using var f32 = f32Pipe.Generate(labels, options);
                using var b16 = pipe.Generate(labels, options);
                sampleDiff = (f32.Images - b16.Images).abs().max().item<float>();
                sampleMax = f32.Images.abs().max().item<float>();
            }
        }
        return new BenchResult(cfg, parameters, batch, DtypeNames.Of(dtype), torch.get_num_threads(),
            $"GLIBC_TUNABLES={Environment.GetEnvironmentVariable("GLIBC_TUNABLES") ?? "(unset)"}; native tuning: {(NativeRuntime.Applied.Length > 0 ? NativeRuntime.Applied : "none")}",
            trainSps, trainTimes, sampleIps, sampleSteps, guidance, sampleTimes, maxDiff, relDiff, sampleDiff, sampleMax, ProcessMemory.PeakResidentBytes());
    }

    /// <summary>A freshly initialised DiT outputs zero (zeroed output layers); give those layers random values so the
    /// bf16 error is measured on a model that computes something.</summary>
    static void RandomizeZeroInit(nn.Module model, Generator g)
    {
        using var _ = torch.no_grad();
        foreach (var (name, p) in model.named_parameters())
            if (p.abs().max().item<float>() == 0 && p.dim() >= 1)
                p.copy_(torch.randn(p.shape, generator: g) * (p.dim() > 1 ? 1.0 / Math.Sqrt(p.shape[1]) : 0.05));
    }

    /// <summary>The model row: architecture, input and parameters.</summary>
    static string ModelLine(IBackboneConfig c, long parameters) =>
        $"{TrainCommand.Describe(c)} on {c.InputSize}x{c.InputSize}x{c.InChannels}, {c.NumClasses} classes, learn sigma {c.LearnSigma} ({parameters:N0} parameters)";

    /// <summary>The cost row: forward GFLOPs per image (the attention products' share), training ≈ 3× forward.</summary>
    static string CostLine(ModelCost cost) =>
        $"{cost.Parameters:N0} parameters; forward {cost.ForwardGFlops:F2} GFLOPs per image (attention QK/AV {cost.AttentionFlops / 1e9:F2}), "
        + $"training {cost.TrainingGFlopsPerImage:F2} GFLOPs per image (3x forward)";

    /// <summary>Rows for the model and, for a UNet, the Transformer preset it is sized against.</summary>
    static void AddCostRows(Table table, IBackboneConfig c, TransformerConfig? peer)
    {
        table.AddRow("cost per image", Markup.Escape(CostLine(ModelCost.Of(c))));
        if (peer is null) return;
        var peerCost = ModelCost.Of(peer);
        table.AddRow("beside: transformer", Markup.Escape(ModelLine(peer, peerCost.Parameters)));
        table.AddRow("beside: cost per image", Markup.Escape(CostLine(peerCost)));
    }

    /// <summary>`--only cost`: the cost rows, counted from the configs (nothing built).</summary>
    static void PrintCost(IBackboneConfig c, TransformerConfig? peer)
    {
        var table = new Table().AddColumn("measure").AddColumn("value");
        table.AddRow("model", Markup.Escape(ModelLine(c, ModelCost.Of(c).Parameters)));
        AddCostRows(table, c, peer);
        AnsiConsole.Write(table);
    }

    static void Print(BenchResult r, TransformerConfig? peer)
    {
        var c = r.Config;
        var table = new Table().AddColumn("measure").AddColumn("value");
        table.AddRow("model", Markup.Escape(ModelLine(c, r.Parameters)));
        AddCostRows(table, c, peer);
        table.AddRow("batch, dtype, threads", Markup.Escape($"{r.Batch}, {r.Dtype}, {r.Threads}; {r.Allocator}"));
        if (r.TrainStepsPerSec is double tps)
            table.AddRow("training steps/s", Markup.Escape($"{tps:F3} ({tps * r.Batch:F1} images/s, {tps * r.Batch * ModelCost.Of(c).TrainingGFlopsPerImage:F1} GFLOP/s at 3x forward); runs {string.Join(" ", r.TrainTimes!.Select(x => $"{x:F3}s"))}"));
        if (r.SampleImagesPerSec is double ips)
            table.AddRow("sampling images/s", Markup.Escape($"{ips:F3} at {r.SampleSteps} ddim steps, guidance {r.GuidanceScale} ({ips * r.SampleSteps:F2} image-steps/s, {ips * r.SampleSteps * (r.GuidanceScale == 1 ? 1 : 2) * ModelCost.Of(c).ForwardGFlops:F1} GFLOP/s); runs {string.Join(" ", r.SampleTimes!.Select(x => $"{x:F3}s"))}"));
        if (r.Bf16MaxAbsDiff is double d)
            table.AddRow("bf16 vs float32", Markup.Escape($"model output max |diff| {d:G3} ({r.Bf16RelDiff:P2} of max |output|); {r.SampleSteps}-step samples (unclipped latents of a random-weight model) max |diff| {r.Bf16SampleMaxAbsDiff:G3} of max |sample| {r.SampleMaxAbs:G3} ({r.Bf16SampleMaxAbsDiff / r.SampleMaxAbs:P2})"));
        table.AddRow("peak resident memory", $"{r.PeakRssBytes / 1048576.0:F0} MiB");
        AnsiConsole.Write(table);
    }

    /// <summary>Random stand-in latents for timing (the values do not change the cost).</summary>
    sealed class RandomLatents(IBackboneConfig cfg, int count) : ITrainingData
    {
        readonly Tensor _x = torch.randn([count, cfg.InChannels, cfg.InputSize, cfg.InputSize], generator: new Generator(11)).DetachFromDisposeScope();
        readonly Tensor _y = torch.randint(0, cfg.NumClasses, [count], generator: new Generator(12)).DetachFromDisposeScope();
        public long Count => count;
        public (Tensor x, Tensor labels) GetBatch(long[] indices, Generator generator, bool horizontalFlip)
        {
            using var idx = torch.tensor(indices);
            return (_x.index_select(0, idx), _y.index_select(0, idx));
        }
    }
}
