using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.RegularExpressions;
using LatentDiffusion.Data;
using LatentDiffusion.Diagnostics;
using LatentDiffusion.Training;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests;

/// <summary>Tests never write the user's cache: the matrix-product speeds they measure go to a scratch folder.</summary>
static class TestCacheDir
{
    [ModuleInitializer]
    internal static void Init()
    {
        if (Environment.GetEnvironmentVariable("LDM_CACHE_DIR") is null)
            Environment.SetEnvironmentVariable("LDM_CACHE_DIR", Path.Combine(Path.GetTempPath(), "ldm-tests", "cache"));
    }
}

/// <summary>
/// <c>--dtype auto</c>: the choice from measured product speeds, the cache (read, written, corrupt, other machines),
/// the options that carry it, the share of the peak, and the per-phase step timings. The measurement is injected:
/// nothing here times a large product.
/// </summary>
public sealed class ComputePrecisionTests : IDisposable
{
    readonly string _dir = RepoPaths.NewTempDir("precision");
    string CacheFile => Path.Combine(_dir, "sub", "matmul-throughput.json");

    public void Dispose() { try { Directory.Delete(_dir, true); } catch (IOException) { } }

    /// <summary>A fake measurement returning fixed speeds and counting its calls.</summary>
    sealed class FakeMeasure(double f32, double bf16)
    {
        public int Calls;
        public double Measure(ScalarType dtype)
        {
            Calls++;
            return dtype == ScalarType.BFloat16 ? bf16 : f32;
        }
    }

    [Theory]
    [InlineData(160, 640, ScalarType.BFloat16)]   // Zen 5 EPYC: bf16 4x
    [InlineData(177, 134, ScalarType.Float32)]    // Xeon without AMX: bf16 slower
    [InlineData(100, 119, ScalarType.Float32)]    // barely faster bf16 does not pay for mixed precision's copies
    [InlineData(100, 120, ScalarType.BFloat16)]
    public void Choice_IsBf16OnlyWhenClearlyFaster(double f32, double bf16, ScalarType expected) =>
        Assert.Equal(expected, ComputePrecision.Choose(f32, bf16));

    [Fact]
    public void FirstResolutionMeasures_AndWritesTheCache_TheNextReadsIt()
    {
        var fake = new FakeMeasure(160, 640);
        var first = ComputePrecision.Resolve(CacheFile, "cpu A", "CPU A", fake.Measure);
        Assert.Equal(2, fake.Calls);
        Assert.False(first.FromCache);
        Assert.Equal(ScalarType.BFloat16, first.Dtype);
        Assert.Equal(4.0, first.Bf16Speedup, 6);
        Assert.True(File.Exists(CacheFile));
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(CacheFile)!, "*.tmp"));

        var second = ComputePrecision.Resolve(CacheFile, "cpu A", "CPU A", new FakeMeasure(1, 1).Measure);
        Assert.True(second.FromCache);
        Assert.Equal((160.0, 640.0, ScalarType.BFloat16), (second.Float32GFlops, second.Bf16GFlops, second.Dtype));
        Assert.Contains("bf16 (bf16 product 640 GFLOP/s vs float32 160 on CPU A", second.ToString());
    }

    [Fact]
    public void AnotherMachineKey_IsMeasured_AndBothMachinesStayCached()
    {
        ComputePrecision.Resolve(CacheFile, "cpu A", "A", new FakeMeasure(160, 640).Measure);
        var other = new FakeMeasure(177, 134);
        var b = ComputePrecision.Resolve(CacheFile, "cpu B", "B", other.Measure);
        Assert.Equal(2, other.Calls);
        Assert.Equal(ScalarType.Float32, b.Dtype);
        Assert.Equal((160.0, 640.0), ThroughputCache.TryRead(CacheFile, "cpu A"));
        Assert.Equal((177.0, 134.0), ThroughputCache.TryRead(CacheFile, "cpu B"));
        Assert.Null(ThroughputCache.TryRead(CacheFile, "cpu C"));
    }

    [Theory]
    [InlineData("not json at all {")]
    [InlineData("")]
    [InlineData("{\"format\":\"ldm-matmul-throughput/1\",\"entries\":{\"cpu A\":{\"float32_gflops\":\"fast\",\"bf16_gflops\":640}}}")]
    [InlineData("{\"format\":\"ldm-matmul-throughput/1\",\"entries\":{\"cpu A\":{\"float32_gflops\":-3,\"bf16_gflops\":640}}}")]
    [InlineData("{\"format\":\"something else\",\"entries\":{\"cpu A\":{\"float32_gflops\":160,\"bf16_gflops\":640}}}")]
    [InlineData("[1, 2, 3]")]
    public void CorruptCache_IsMeasuredAgain_AndRewritten(string content)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(CacheFile)!);
        File.WriteAllText(CacheFile, content);
        var fake = new FakeMeasure(177, 134);
        var choice = ComputePrecision.Resolve(CacheFile, "cpu A", "A", fake.Measure);
        Assert.Equal(2, fake.Calls);
        Assert.Equal(ScalarType.Float32, choice.Dtype);
        Assert.Equal((177.0, 134.0), ThroughputCache.TryRead(CacheFile, "cpu A"));
    }

    [Fact]
    public void Remeasure_ReplacesTheCachedSpeeds()
    {
        ComputePrecision.Resolve(CacheFile, "cpu A", "A", new FakeMeasure(80, 150).Measure);   // measured while the cores were busy
        var fresh = new FakeMeasure(160, 640);
        var choice = ComputePrecision.Resolve(CacheFile, "cpu A", "A", fresh.Measure, remeasure: true);
        Assert.Equal(2, fresh.Calls);
        Assert.False(choice.FromCache);
        Assert.Equal((160.0, 640.0), ThroughputCache.TryRead(CacheFile, "cpu A"));
    }

    [Fact]
    public void UnwritableCache_IsNoError()
    {
        string blocked = Path.Combine(_dir, "file-not-folder");
        File.WriteAllText(blocked, "x");
        var fake = new FakeMeasure(160, 640);
        var choice = ComputePrecision.Resolve(Path.Combine(blocked, "cache.json"), "cpu A", "A", fake.Measure);
        Assert.Equal(ScalarType.BFloat16, choice.Dtype);
    }

    [Fact]
    public void MachineKey_NamesTheCpuThreadsAndLibtorch()
    {
        string key = ComputePrecision.MachineKey();
        Assert.Contains(ComputePrecision.CpuModel(), key);
        Assert.Contains($"{TorchSharp.torch.get_num_threads()} threads", key);
        Assert.Contains("libtorch", key);
    }

    [Fact]
    public void ComputeDtype_ParsesPrintsAndSerializesByName()
    {
        foreach (var name in new[] { "auto", "float32", "bf16", "f16" })
            Assert.Equal(name, ComputeDtype.Parse(name).ToString());
        Assert.True(ComputeDtype.Parse("AUTO").IsAuto);
        Assert.True(default(ComputeDtype).IsAuto);
        Assert.Equal(ScalarType.BFloat16, ComputeDtype.Parse("bfloat16").Fixed);
        Assert.Throws<LdmException>(() => ComputeDtype.Parse("int8"));
        Assert.Throws<LdmOptionException>(() => { ComputeDtype d = ScalarType.Int64; });
        ComputeDtype fromScalar = ScalarType.BFloat16;
        Assert.Equal(ComputeDtype.BFloat16, fromScalar);
        Assert.Equal(ScalarType.Float32, ComputeDtype.Float32.Resolve());   // a fixed dtype never measures

        var options = new DiffusionTrainingOptions { Dtype = ComputeDtype.Auto };
        string json = JsonSerializer.Serialize(options);
        Assert.Contains("\"Dtype\":\"auto\"", json);
        Assert.DoesNotContain("Bf16", json);
        Assert.True(JsonSerializer.Deserialize<DiffusionTrainingOptions>(json)!.Dtype.IsAuto);
    }

    [Fact]
    public void TrainingOptions_DefaultToFloat32_KeepBf16_AndRefuseF16()
    {
        Assert.Equal(ComputeDtype.Float32, new DiffusionTrainingOptions().Dtype);
#pragma warning disable CS0618 // the old property still works for existing callers
        Assert.Equal(ComputeDtype.BFloat16, new DiffusionTrainingOptions { Bf16 = true }.Dtype);
        Assert.True(new DiffusionTrainingOptions { Dtype = ComputeDtype.BFloat16 }.Bf16);
#pragma warning restore CS0618
        var e = Assert.Throws<LdmOptionException>(() => new DiffusionTrainingOptions { Dtype = ComputeDtype.Float16 }.Validate());
        Assert.Equal("Dtype", e.Property);
        new DiffusionTrainingOptions { Dtype = ComputeDtype.Auto }.Validate();
    }

    [Theory]
    [InlineData(36.33e9 * 8, 1.0, 600, 0.4844)]
    [InlineData(12.11e9 * 32, 2.0, 160, 1.2110)]
    [InlineData(1e9, 0.0, 100, double.NaN)]
    public void Utilization_IsModelFlopsOverTimeOverPeak(double flops, double seconds, double peak, double expected)
    {
        double u = Utilization.Of(flops, seconds, peak);
        if (double.IsNaN(expected)) Assert.True(double.IsNaN(u));
        else Assert.Equal(expected, u, 3);
    }
}

/// <summary>The trainer's opt-in step timings, the dtype a run resolved to, and resuming in another dtype.</summary>
[Collection(ConsoleCollection.Name)]
public sealed class StepTimingsTests : IDisposable
{
    readonly SingleTorchThread _threads = new();
    readonly string _dir = RepoPaths.NewTempDir("step-timings");
    static readonly Lazy<ImageDataset> Shapes = new(() => ShapesDataset.Generate(32, 5, text: false));
    static Denoisers.DenoiserInfo Info() => TinyModels.Info(TinyModels.Config(size: 32));

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
        _threads.Dispose();
    }

    static DiffusionTrainingOptions Options(ComputeDtype dtype, int steps = 4) => new()
    {
        Steps = steps, BatchSize = 4, LearningRate = 1e-3, Dtype = dtype, EmaDecay = 0.9, LogEvery = 1, CheckpointEvery = 2, GradClip = 1,
    };

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Timings_RecordEveryPhase_AndAddUpToTheStep(bool bf16)
    {
        using var trainer = new DiffusionTrainer(Info(), new PixelTrainingData(Shapes.Value), Options(bf16 ? ComputeDtype.BFloat16 : ComputeDtype.Float32, 100), null);
        Assert.Equal(bf16 ? ScalarType.BFloat16 : ScalarType.Float32, trainer.ComputeDtype);
        trainer.RunSteps(1);                          // no sink: nothing recorded anywhere
        var timings = trainer.Timings = new StepTimings();
        var walls = new List<double>();
        for (int i = 0; i < 5; i++)
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            trainer.RunSteps(1);
            walls.Add(clock.Elapsed.TotalSeconds);
        }
        Assert.Equal(5, timings.Count);
        for (int i = 0; i < 5; i++)
        {
            foreach (var phase in StepTimings.Phases) Assert.True(timings.Seconds(i, phase) >= 0);
            Assert.True(timings.Seconds(i, StepPhase.Forward) > 0 && timings.Seconds(i, StepPhase.Backward) > 0 && timings.Seconds(i, StepPhase.Optimizer) > 0);
            // The phases cover the step: what is left is the run's bookkeeping.
            Assert.InRange(timings.Total(i), 0.5 * walls[i], walls[i]);
        }
        Assert.True(timings.Median(StepPhase.Backward) > 0);
        trainer.Timings = null;
        trainer.RunSteps(1);
        Assert.Equal(5, timings.Count);
    }

    [Fact]
    public void RunStartedInBf16_ResumesInFloat32_AndRecordsTheDtypeItRan()
    {
        string run = Path.Combine(_dir, "run");
        using (var trainer = new DiffusionTrainer(Info(), new PixelTrainingData(Shapes.Value), Options(ComputeDtype.BFloat16, 2), run)) trainer.Run();
        using var file = IO.SafetensorsFile.Open(Path.Combine(run, DiffusionTrainer.CheckpointFile));
        Assert.Contains("\"compute_dtype\":\"\\u0022bf16\\u0022\"", file.Metadata["ldm.train.settings"].Replace("\\\"", "\\u0022"));
        // The dtype is a speed setting: a machine where auto resolves otherwise (or a user choosing float32) resumes the run.
        using var resumed = new DiffusionTrainer(Info(), new PixelTrainingData(Shapes.Value), Options(ComputeDtype.Float32, 3), run);
        Assert.Equal(2L, resumed.ResumedFromStep);
        Assert.Equal(ScalarType.Float32, resumed.ComputeDtype);
        resumed.Run();
    }
}

/// <summary>The tool: <c>--dtype auto</c> (the default) prints what it chose; bench shows the peaks, MFU, the forward pass and the profile.</summary>
[Collection(ConsoleCollection.Name)]
public sealed class DtypeAutoCliTests : IDisposable
{
    readonly string _dir = RepoPaths.NewTempDir("dtype-auto-cli");

    public void Dispose() { try { Directory.Delete(_dir, true); } catch (IOException) { } }

    static string Flat(string table) => Regex.Replace(Regex.Replace(table, "[│┌┐└┘├┤┬┴┼─]", " "), @"\s+", " ");

    [Fact]
    public void Sample_DtypeAutoIsTheDefault_AndPrintsTheChoice()
    {
        string model = TinyModels.SaveCheckpoint(_dir);
        var expected = ComputePrecision.Auto();
        foreach (var args in new[] { new[] { "--dtype", "auto" }, Array.Empty<string>() })
        {
            var r = CliTestHost.Run(["sample", "--model", model, "--out", Path.Combine(_dir, "s"), "--classes", "1", "--num", "2", "--steps", "2", .. args]);
            Assert.True(r.ExitCode == 0, r.ToString());
            Assert.Contains($"dtype auto → {(expected.Dtype == ScalarType.BFloat16 ? "bf16" : "float32")} (bf16 product", r.Stdout);
            Assert.Contains("GFLOP/s vs float32", r.Stdout);
        }
        var fixedDtype = CliTestHost.Run("sample", "--model", model, "--out", Path.Combine(_dir, "f"), "--classes", "1", "--num", "2", "--steps", "2", "--dtype", "float32");
        Assert.Contains("dtype float32", fixedDtype.Stdout);
        var bad = CliTestHost.Run("sample", "--model", model, "--out", Path.Combine(_dir, "b"), "--dtype", "fastest");
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("write auto, float32, bf16 or f16", bad.Stderr);
    }

    [Fact]
    public void Train_PrintsTheAutoChoice_AndResumesUnderAnotherDtype()
    {
        string run = Path.Combine(_dir, "run");
        string[] common = ["train", "--data", "shapes:count=32", "--out", run, "--hidden-size", "32", "--depth", "1", "--num-heads", "2",
            "--patch-size", "8", "--batch-size", "4", "--log-every", "1", "--sample-steps", "1"];
        var first = CliTestHost.Run([.. common, "--steps", "1"]);
        Assert.True(first.ExitCode == 0, first.ToString());
        Assert.Contains("dtype auto → ", first.Stdout);
        var resumed = CliTestHost.Run([.. common, "--steps", "2", "--dtype", ComputePrecision.Auto().Dtype == ScalarType.BFloat16 ? "float32" : "bf16"]);
        Assert.True(resumed.ExitCode == 0, resumed.ToString());
        Assert.Contains("resuming", resumed.Stdout);
    }

    [Fact]
    public void Bench_ShowsPeaksMfuForwardAndTheStepProfile()
    {
        string model = TinyModels.SaveCheckpoint(_dir);
        var r = CliTestHost.Run("bench", "--model", model, "--only", "train", "--profile", "--runs", "3", "--warmup-runs", "1", "-b", "2", "--dtype", "float32");
        Assert.True(r.ExitCode == 0, r.ToString());
        string text = Flat(r.Stdout);
        Assert.Matches(@"matrix-product peak float32 \d+ GFLOP/s, bf16 \d+ GFLOP/s", text);
        Assert.Matches(@"MFU \d+ ?% of the float32 peak", text);
        // The profile: every phase, and shares that add up to the step.
        var shares = new List<double>();
        foreach (var phase in new[] { "data", "forward", "backward", "optimizer", "EMA", "other" })
        {
            var m = Regex.Match(text, $@" {phase}[^%]*? (\d+\.\d+) (\d+\.\d) ?%");
            Assert.True(m.Success, $"no '{phase}' row in:\n{r.Stdout}");
            shares.Add(double.Parse(m.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture));
        }
        Assert.InRange(shares.Sum(), 99.5, 100.5);
        var sum = double.Parse(Regex.Match(text, @"sum of the medians (\d+\.\d+)").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        var step = double.Parse(Regex.Match(text, @"step \(median of the runs\) (\d+\.\d+)").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(sum, 0.5 * step, 1.5 * step);

        var forward = CliTestHost.Run("bench", "--model", model, "--only", "forward", "--runs", "2", "--warmup-runs", "1", "-b", "2");
        Assert.True(forward.ExitCode == 0, forward.ToString());
        Assert.Matches(@"forward pass \d+\.\d+ s at batch 2, guidance 1 .*MFU", Flat(forward.Stdout));
        Assert.Contains("auto →", Flat(forward.Stdout));

        var refused = CliTestHost.Run("bench", "--model", model, "--only", "sample", "--profile");
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("--profile splits the training step", refused.Stderr);
    }
}
