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
/// `ldm bench`: training steps per second (forward, backward, AdamW step), one forward pass and sampling images per
/// second for a preset, batch size and dtype, as the median of several timed runs after warm-up, with the peak resident
/// memory. It shows the machine's measured matrix-product speeds (float32, bf16: what <c>--dtype auto</c> chooses from)
/// and each figure's share of the peak of its dtype (MFU: model FLOPs / time / peak). <c>--profile</c> splits the
/// training step into data, forward, backward, optimizer and EMA. With bf16 it also reports how far the bf16 model's
/// outputs are from float32's on the same input. Every run prints the model's cost per image (<see cref="ModelCost"/>:
/// parameters, forward and training FLOPs), a UNet beside the Transformer preset it is sized against; <c>--only cost</c>
/// prints just that, without building anything.
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
        var dtype = CommonOptions.ComputeDtype("Compute dtype (bf16: mixed-precision training, bf16 sampling)", ScalarType.Float32, ScalarType.BFloat16);
        var warmupRuns = new Option<int>("--warmup-runs") { Description = "Untimed runs before the timed ones.", DefaultValueFactory = _ => 2 };
        var warmup = CommonOptions.Deprecated<int>("--warmup");
        var runs = new Option<int>("--runs") { Description = "Timed runs (the median is reported).", DefaultValueFactory = _ => 5 };
        var sampleSteps = new Option<int>("--sample-steps") { Description = "DDIM steps per timed sampling run.", DefaultValueFactory = _ => 10 };
        var guidance = new Option<double>("--guidance") { Description = "Guidance scale while sampling (not 1: doubled batch).", DefaultValueFactory = _ => 4.0 };
        var runtime = CommonOptions.Runtime();
        var model = new Option<string?>("--model") { Description = "Bench the architecture and diffusion of this class-model checkpoint (e.g. a study's run) instead of a preset." };
        var only = new Option<string>("--only") { Description = "train, sample, forward (one forward pass at the batch, guidance 1, no sampler loop), both (train and sample), matmul (float32 and bf16 square products of --matmul-size only) or cost (parameters and FLOPs per image only: nothing is built or timed).", DefaultValueFactory = _ => "both" };
        var matmulSize = new Option<int>("--matmul-size") { Description = "Side of the square products of --only matmul.", DefaultValueFactory = _ => 2048 };
        var json = new Option<bool>("--json") { Description = "Print the results as one JSON object instead of tables (for scripts such as bench/side-by-side.sh)." };
        var profile = new Option<bool>("--profile") { Description = "Split the training step into data, forward, backward, optimizer and EMA (medians over the timed runs)." };
        var command = new Command("bench", "Measure training and sampling throughput and peak memory for a model preset.")
        {
            backbone, preset, block, unetPreset, inputSize, channels, numClasses, classes, batch, dtype, warmupRuns, warmup, runs, sampleSteps, guidance, only, profile, model, matmulSize, json,
        };
        foreach (var o in runtime.All) command.Options.Add(o);
        command.SetAction(parse =>
        {
            var device = runtime.Apply(parse);
            var computeDtype = DtypeNames.ParseCompute(parse.GetValue(dtype), ScalarType.Float32, ScalarType.BFloat16);
            int nWarm = CommonOptions.ReadDeprecated(parse, warmup, "--warmup-runs {}", out int oldWarm) ? oldWarm : parse.GetValue(warmupRuns);
            int nClasses = CommonOptions.ReadDeprecated(parse, classes, "--num-classes {}", out int oldClasses) ? oldClasses : parse.GetValue(numClasses);
            int b = parse.GetValue(batch), nRuns = parse.GetValue(runs), steps = parse.GetValue(sampleSteps);
            if (b < 1 || nWarm < 0 || nRuns < 1 || steps < 1) throw new LdmException("--batch-size, --runs and --sample-steps must be at least 1 and --warmup-runs at least 0.");
            string what = parse.GetValue(only)!.ToLowerInvariant();
            if (what is not ("train" or "sample" or "forward" or "both" or "matmul" or "cost")) throw new LdmException($"--only '{what}' is unknown; use train, sample, forward, both, matmul or cost.");
            bool asJson = parse.GetValue(json);
            if (what == "matmul")
            {
                int n = parse.GetValue(matmulSize);
                if (n < 1 || n > 16384) throw new LdmException($"--matmul-size {n} is out of range; give a side from 1 to 16384.");
                PrintMatmul(n, nWarm, nRuns, device, asJson);
                return 0;
            }
            bool withProfile = parse.GetValue(profile);
            if (withProfile && what is not ("train" or "both")) throw new LdmException($"--profile splits the training step; drop --only {what} or use --only train.");
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
                Print(Run(saved, b, computeDtype, nWarm, nRuns, steps, parse.GetValue(guidance), what, device, withProfile), null, asJson);
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
            var result = Run(info, b, computeDtype, nWarm, nRuns, steps, parse.GetValue(guidance), what, device, withProfile);
            Print(result, peer, asJson);
            return 0;
        });
        return command;
    }

    public sealed record BenchResult(IBackboneConfig Config, long Parameters, int Batch, string Dtype, int Threads, string? Allocator,
        double? TrainStepsPerSec, double[]? TrainTimes, double? SampleImagesPerSec, int SampleSteps, double GuidanceScale, double[]? SampleTimes,
        double? Bf16MaxAbsDiff, double? Bf16RelDiff, double? Bf16SampleMaxAbsDiff, double? SampleMaxAbs, long PeakRssBytes)
    {
        /// <summary>The machine's product speeds and what auto picks from them.</summary>
        public PrecisionChoice? Precision { get; init; }
        /// <summary>Whether the dtype was chosen by auto.</summary>
        public bool DtypeIsAuto { get; init; }
        /// <summary>Median seconds of one forward pass at the batch (guidance 1), and every timed run.</summary>
        public double? ForwardSeconds { get; init; }
        public double[]? ForwardTimes { get; init; }
        /// <summary>With --profile: the phases of the timed training steps.</summary>
        public StepTimings? Profile { get; init; }

        ScalarType ComputeType => Dtype == "bf16" ? ScalarType.BFloat16 : ScalarType.Float32;
        double Peak => Precision?.PeakGFlops(ComputeType) ?? double.NaN;
        /// <summary>Training step's share of the dtype's product peak: training FLOPs of the batch / step time / peak.</summary>
        public double? TrainUtilization => TrainStepsPerSec is double sps ? Utilization.Of(ModelCost.Of(Config).TrainingFlopsPerImage * Batch, 1 / sps, Peak) : null;
        /// <summary>One forward pass's share of the peak.</summary>
        public double? ForwardUtilization => ForwardSeconds is double s ? Utilization.Of(ModelCost.Of(Config).ForwardFlops * Batch, s, Peak) : null;
        /// <summary>The sampling loop's share of the peak (the network's FLOPs only; guidance doubles its batch).</summary>
        public double? SampleUtilization => SampleImagesPerSec is double ips
            ? Utilization.Of(ModelCost.Of(Config).ForwardFlops * Batch * SampleSteps * (GuidanceScale == 1 ? 1 : 2), Batch / ips, Peak) : null;
    }

    public static BenchResult Run(DenoiserInfo info, int batch, ComputeDtype computeDtype, int warmup, int runs, int sampleSteps, double guidance, string what,
        Device? device = null, bool profile = false)
    {
        var cfg = info.Backbone;
        // The product peaks are shown (and divide the MFU figures) whatever the dtype; auto picks from them. Measured
        // afresh (and the cache updated): a bench is where a user looks at them, and the figures should be of this moment.
        var precision = ComputePrecision.Auto(device, remeasure: true);
        var dtype = computeDtype.Resolve(device);
        double? forwardSeconds = null;
        double[]? forwardTimes = null;
        StepTimings? timings = null;
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
            var options = new DiffusionTrainingOptions { Steps = int.MaxValue, BatchSize = batch, Dtype = dtype, LogEvery = int.MaxValue, CheckpointEvery = int.MaxValue };
            try
            {
                using var trainer = new DiffusionTrainer(info, data, options, runDir, device);
                trainer.RunSteps(warmup);
                // Timed only after the warm-up; the split costs a few stopwatch reads per step.
                if (profile) trainer.Timings = timings = new StepTimings();
                var (median, times) = Timing.Median(() => trainer.RunSteps(1), 0, runs);
                trainSps = 1.0 / median; trainTimes = times;
            }
            finally { try { Directory.Delete(runDir, true); } catch (IOException) { } }
        }
        if (what is "forward")
        {
            // One forward pass of the network at the batch (guidance 1: no doubled batch), as a sampler step calls it.
            using var pipe = DiffusionPipeline.FromModels(model, info, dtype: dtype);
            using var scope = torch.NewDisposeScope();
            using var noGrad = torch.no_grad();
            var g = new Generator(5);
            var (x, t, y) = RandomInputs(cfg, batch, g, device ?? torch.CPU);
            (forwardSeconds, forwardTimes) = Timing.Median(() => { using var inner = torch.NewDisposeScope(); pipe.Network.forward(x, t, y); }, warmup, runs);
            g.Dispose();
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
                var (x, t, y) = RandomInputs(cfg, batch, g, dev);
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
            trainSps, trainTimes, sampleIps, sampleSteps, guidance, sampleTimes, maxDiff, relDiff, sampleDiff, sampleMax, ProcessMemory.PeakResidentBytes())
        {
            Precision = precision, DtypeIsAuto = computeDtype.IsAuto, ForwardSeconds = forwardSeconds, ForwardTimes = forwardTimes, Profile = timings,
        };
    }

    /// <summary>Random latents and timesteps from <paramref name="g"/>, and labels 0, 1, ... cycling through the classes.</summary>
    static (Tensor x, Tensor t, Tensor y) RandomInputs(IBackboneConfig cfg, int batch, Generator g, Device device) =>
        (torch.randn([batch, cfg.InChannels, cfg.InputSize, cfg.InputSize], generator: g).to(device),
         torch.randint(0, 1000, [batch], generator: g).to(device),
         torch.tensor(Enumerable.Range(0, batch).Select(i => (long)(i % cfg.NumClasses)).ToArray(), device: device));

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

    /// <summary>`--only matmul`: median GFLOP/s of n×n products in float32 and bf16 (the figure beside PyTorch's in
    /// bench/side-by-side.sh); the peak auto uses is measured on smaller products, closer to a model's.</summary>
    static void PrintMatmul(int n, int warmup, int runs, Device device, bool asJson)
    {
        double Speed(ScalarType dtype)
        {
            using var scope = torch.NewDisposeScope();
            var a = torch.randn([n, n], device: device).to(dtype);
            var b2 = torch.randn([n, n], device: device).to(dtype);
            var (median, _) = Timing.Median(() => { using var c = torch.mm(a, b2); }, warmup, runs);
            return 2.0 * n * n * n / median / 1e9;
        }
        double f32 = Speed(ScalarType.Float32), bf16 = Speed(ScalarType.BFloat16);
        if (asJson)
        {
            Console.WriteLine(new JsonObject { ["matmul"] = new JsonObject { ["size"] = n, ["float32"] = f32, ["bf16"] = bf16 }, ["threads"] = torch.get_num_threads(),
                ["native"] = NativeRuntime.Applied }.ToJsonString());
            return;
        }
        var table = new Table().AddColumn("measure").AddColumn("value");
        table.AddRow($"{n}² product, float32", $"{f32:F0} GFLOP/s");
        table.AddRow($"{n}² product, bf16", $"{bf16:F0} GFLOP/s ({bf16 / f32:F2}x)");
        table.AddRow("threads; native tuning", Markup.Escape($"{torch.get_num_threads()}; {(NativeRuntime.Applied.Length > 0 ? NativeRuntime.Applied : "none")}"));
        AnsiConsole.Write(table);
    }

    /// <summary>The results as one JSON object: seconds are medians, shares are of the dtype's measured product peak.</summary>
    static JsonObject ToJson(BenchResult r)
    {
        static JsonArray Times(double[] t) => new(t.Select(x => (JsonNode)x).ToArray());
        var o = new JsonObject
        {
            ["model"] = TrainCommand.Describe(r.Config), ["parameters"] = r.Parameters, ["batch"] = r.Batch, ["dtype"] = r.Dtype,
            ["dtype_auto"] = r.DtypeIsAuto, ["threads"] = r.Threads, ["native"] = NativeRuntime.Applied, ["peak_rss_mib"] = r.PeakRssBytes / 1048576.0,
        };
        if (r.Precision is { } pc) o["peak_gflops"] = new JsonObject { ["float32"] = pc.Float32GFlops, ["bf16"] = pc.Bf16GFlops, ["machine"] = pc.Machine };
        if (r.TrainStepsPerSec is double tps)
            o["train"] = new JsonObject { ["seconds"] = 1 / tps, ["times"] = Times(r.TrainTimes!), ["dtype"] = r.Dtype, ["peak_share"] = r.TrainUtilization };
        if (r.ForwardSeconds is double fs)
            o["forward"] = new JsonObject { ["seconds"] = fs, ["times"] = Times(r.ForwardTimes!), ["dtype"] = r.Dtype, ["peak_share"] = r.ForwardUtilization };
        if (r.SampleImagesPerSec is double ips)
            o["sample"] = new JsonObject { ["images_per_sec"] = ips, ["times"] = Times(r.SampleTimes!), ["steps"] = r.SampleSteps, ["guidance"] = r.GuidanceScale };
        if (r.Profile is { Count: > 0 } profile)
        {
            var phases = new JsonObject();
            foreach (var p in StepTimings.Phases) phases[p.ToString().ToLowerInvariant()] = profile.Median(p);
            o["profile"] = phases;
        }
        return o;
    }

    static void Print(BenchResult r, TransformerConfig? peer, bool asJson = false)
    {
        if (asJson)
        {
            Console.WriteLine(ToJson(r).ToJsonString());
            return;
        }
        var c = r.Config;
        var table = new Table().AddColumn("measure").AddColumn("value");
        table.AddRow("model", Markup.Escape(ModelLine(c, r.Parameters)));
        AddCostRows(table, c, peer);
        if (r.Precision is { } pc)
            table.AddRow("matrix-product peak", Markup.Escape($"float32 {pc.Float32GFlops:F0} GFLOP/s, bf16 {pc.Bf16GFlops:F0} GFLOP/s ({pc.Bf16Speedup:F2}x; {MatmulThroughput.DefaultSize}² products, fastest of 5{(pc.FromCache ? ", cached" : "")}) on {pc.Machine}; auto picks {DtypeNames.Of(pc.Dtype)}"));
        table.AddRow("batch, dtype, threads", Markup.Escape($"{r.Batch}, {(r.DtypeIsAuto ? "auto → " : "")}{r.Dtype}, {r.Threads}; {r.Allocator}"));
        string Mfu(double? share) => share is double m ? $"; MFU {m:P0} of the {r.Dtype} peak" : "";
        if (r.TrainStepsPerSec is double tps)
            table.AddRow("training steps/s", Markup.Escape($"{tps:F3} ({tps * r.Batch:F1} images/s, {tps * r.Batch * ModelCost.Of(c).TrainingGFlopsPerImage:F1} GFLOP/s at 3x forward{Mfu(r.TrainUtilization)}); runs {string.Join(" ", r.TrainTimes!.Select(x => $"{x:F3}s"))}"));
        if (r.ForwardSeconds is double fs)
            table.AddRow("forward pass", Markup.Escape($"{fs:F3} s at batch {r.Batch}, guidance 1 ({r.Batch * ModelCost.Of(c).ForwardGFlops / fs:F1} GFLOP/s{Mfu(r.ForwardUtilization)}); runs {string.Join(" ", r.ForwardTimes!.Select(x => $"{x:F3}s"))}"));
        if (r.SampleImagesPerSec is double ips)
            table.AddRow("sampling images/s", Markup.Escape($"{ips:F3} at {r.SampleSteps} ddim steps, guidance {r.GuidanceScale} ({ips * r.SampleSteps:F2} image-steps/s, {ips * r.SampleSteps * (r.GuidanceScale == 1 ? 1 : 2) * ModelCost.Of(c).ForwardGFlops:F1} GFLOP/s{Mfu(r.SampleUtilization)}); runs {string.Join(" ", r.SampleTimes!.Select(x => $"{x:F3}s"))}"));
        if (r.Bf16MaxAbsDiff is double d)
            table.AddRow("bf16 vs float32", Markup.Escape($"model output max |diff| {d:G3} ({r.Bf16RelDiff:P2} of max |output|); {r.SampleSteps}-step samples (unclipped latents of a random-weight model) max |diff| {r.Bf16SampleMaxAbsDiff:G3} of max |sample| {r.SampleMaxAbs:G3} ({r.Bf16SampleMaxAbsDiff / r.SampleMaxAbs:P2})"));
        table.AddRow("peak resident memory", $"{r.PeakRssBytes / 1048576.0:F0} MiB");
        AnsiConsole.Write(table);
        if (r.Profile is { Count: > 0 } profile && r.TrainTimes is { } times) PrintProfile(profile, times);
    }

    /// <summary>
    /// The training step split by phase: the median over the timed steps of each phase, and of "other" (what a step
    /// spent outside the phases: the run's bookkeeping, the divergence check, freeing the step's tensors), each as a share
    /// of the sum of these medians, which is close to the median step when the runs are steady.
    /// </summary>
    static void PrintProfile(StepTimings profile, double[] stepSeconds)
    {
        var medians = StepTimings.Phases.Select(p => (PhaseName(p), profile.Median(p))).ToList();
        medians.Add(("other", Median(stepSeconds.Select((s, i) => s - profile.Total(i)))));
        double sum = medians.Sum(m => m.Item2);
        var table = new Table().AddColumn("training step phase").AddColumn(new TableColumn("median s").RightAligned()).AddColumn(new TableColumn("share").RightAligned());
        foreach (var (name, s) in medians) table.AddRow(Markup.Escape(name), $"{s:F4}", $"{s / sum:P1}");
        table.AddRow("sum of the medians", $"{sum:F4}", "100.0 %");
        table.AddRow("step (median of the runs)", $"{Median(stepSeconds):F4}", "");
        AnsiConsole.Write(table);
    }

    static double Median(IEnumerable<double> values)
    {
        var s = values.Order().ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : 0.5 * (s[s.Length / 2 - 1] + s[s.Length / 2]);
    }

    static string PhaseName(StepPhase phase) => phase switch
    {
        StepPhase.Data => "data (batch wait, noise)",
        StepPhase.Forward => "forward (with loss)",
        StepPhase.Backward => "backward",
        StepPhase.Optimizer => "optimizer (clip, AdamW, bf16 copies)",
        StepPhase.Ema => "EMA",
        _ => phase.ToString(),
    };

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
