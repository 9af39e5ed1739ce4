using System.Globalization;
using LatentDiffusion.Denoisers;
using LatentDiffusion.Data;
using LatentDiffusion.IO;
using LatentDiffusion.Training;
using LatentDiffusion.Transformers;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests;

/// <summary>
/// The diffusion trainer on a tiny in-context model (hidden 32, depth 2, 2 heads, patch 4 on the 32×32 shapes):
/// same seed same curve and weights, exact resume from a run folder, bf16 mixed precision, non-finite losses and
/// atomic checkpoints.
/// </summary>
[Collection(ConsoleCollection.Name)]
public sealed class TrainerTests(ITestOutputHelper output) : IDisposable
{
    readonly SingleTorchThread _threads = new();
    readonly List<string> _dirs = [];
    static readonly Lazy<ImageDataset> Shapes = new(() => ShapesDataset.Generate(64, 5, text: false));

    public void Dispose()
    {
        foreach (var d in _dirs) try { Directory.Delete(d, true); } catch (IOException) { }
        _threads.Dispose();
    }

    string NewRunDir()
    {
        string d = RepoPaths.NewTempDir("trainer");
        _dirs.Add(d);
        return d;
    }

    static DenoiserInfo Info(bool learnSigma = true) => TinyModels.Info(TinyModels.Config(size: 32, learnSigma: learnSigma));

    static DiffusionTrainingOptions Options(int steps, long seed = 0, bool bf16 = false, double lr = 1e-3) => new()
    {
        Steps = steps, BatchSize = 8, LearningRate = lr, Seed = seed, Bf16 = bf16, EmaDecay = 0.9, LogEvery = 1,
        CheckpointEvery = 3, HorizontalFlip = true, WarmupSteps = 2, GradClip = 1.0,
    };

    static void Train(string runDir, DiffusionTrainingOptions options, ITrainingData? data = null, DenoiserInfo? info = null)
    {
        using var trainer = new DiffusionTrainer(info ?? Info(), data ?? new PixelTrainingData(Shapes.Value), options, runDir);
        trainer.Run();
    }

    static double[] Losses(string runDir) =>
        MetricsLog.Read(Path.Combine(runDir, DiffusionTrainer.MetricsFile)).Select(l => l["loss"].GetDouble()).ToArray();

    static long[] LoggedSteps(string runDir) =>
        MetricsLog.Read(Path.Combine(runDir, DiffusionTrainer.MetricsFile)).Select(l => l["step"].GetInt64()).ToArray();

    /// <summary>Every tensor of a checkpoint (model, EMA, optimizer state) as float64 arrays, by name.</summary>
    static Dictionary<string, double[]> Tensors(string path)
    {
        using var file = SafetensorsFile.Open(path);
        var result = new Dictionary<string, double[]>();
        foreach (var name in file.Keys)
        {
            using var t = file.Read(name);
            using var d = t.to(ScalarType.Float64);
            result[name] = d.data<double>().ToArray();
        }
        return result;
    }

    static void AssertSameTensors(string pathA, string pathB)
    {
        var a = Tensors(pathA);
        var b = Tensors(pathB);
        Assert.Equal(a.Keys.Order(), b.Keys.Order());
        foreach (var (name, values) in a)
            Assert.True(values.AsSpan().SequenceEqual(b[name]), $"tensor '{name}' differs between {pathA} and {pathB}");
    }

    [Fact]
    public void SameSeed_SameLossCurveAndWeights_OtherSeedDiffers()
    {
        string a = NewRunDir(), b = NewRunDir(), c = NewRunDir();
        Train(a, Options(4, seed: 3));
        Train(b, Options(4, seed: 3));
        Train(c, Options(4, seed: 4));
        Assert.Equal(4, Losses(a).Length);
        Assert.Equal(Losses(a), Losses(b));
        AssertSameTensors(Path.Combine(a, DiffusionTrainer.CheckpointFile), Path.Combine(b, DiffusionTrainer.CheckpointFile));
        Assert.Equal(File.ReadAllBytes(Path.Combine(a, DiffusionTrainer.ModelFile)), File.ReadAllBytes(Path.Combine(b, DiffusionTrainer.ModelFile)));
        Assert.NotEqual(Losses(a), Losses(c));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Resume_ContinuesTheSameCurve(bool bf16)
    {
        string straight = NewRunDir(), resumed = NewRunDir();
        Train(straight, Options(6, seed: 7, bf16: bf16));
        Train(resumed, Options(3, seed: 7, bf16: bf16));
        Assert.Equal([1L, 2, 3], LoggedSteps(resumed));
        // A new trainer object (as after a restart) picks the run up at step 3 and goes on to 6.
        using (var trainer = new DiffusionTrainer(Info(), new PixelTrainingData(Shapes.Value), Options(6, seed: 7, bf16: bf16), resumed))
        {
            Assert.Equal(3, trainer.Step);
            trainer.Run();
        }
        Assert.Equal([1L, 2, 3, 4, 5, 6], LoggedSteps(resumed));
        Assert.Equal(Losses(straight), Losses(resumed));
        AssertSameTensors(Path.Combine(straight, DiffusionTrainer.CheckpointFile), Path.Combine(resumed, DiffusionTrainer.CheckpointFile));
        AssertSameTensors(Path.Combine(straight, DiffusionTrainer.ModelFile), Path.Combine(resumed, DiffusionTrainer.ModelFile));
    }

    [Fact]
    public void Resume_AfterACrashBetweenCheckpoints_CutsTheLogBackAndReplays()
    {
        // Checkpoint at step 3, then the process dies after logging steps 4 and 5: the log is cut back to step 3 and
        // the steps 4.. are replayed with the same losses.
        string straight = NewRunDir(), crashed = NewRunDir();
        Train(straight, Options(6, seed: 2));
        Train(crashed, Options(3, seed: 2));
        var lines = File.ReadAllLines(Path.Combine(straight, DiffusionTrainer.MetricsFile));
        File.AppendAllLines(Path.Combine(crashed, DiffusionTrainer.MetricsFile), [lines[3], lines[4]]);
        Train(crashed, Options(6, seed: 2));
        Assert.Equal([1L, 2, 3, 4, 5, 6], LoggedSteps(crashed));
        Assert.Equal(Losses(straight), Losses(crashed));
    }

    [Fact]
    public void Bf16_LossFalls_AndStaysCloseToFloat32()
    {
        string f32 = NewRunDir(), b16 = NewRunDir();
        var options = Options(30, seed: 1, lr: 3e-3) with { CheckpointEvery = 1000, BatchSize = 16, HorizontalFlip = false };
        var info = Info(learnSigma: false);
        Train(f32, options, info: info);
        Train(b16, options with { Bf16 = true }, info: info);
        double[] lf = Losses(f32), lb = Losses(b16);
        double early = lb.Take(5).Average(), late = lb.TakeLast(5).Average();
        double maxRel = Enumerable.Range(0, 5).Max(i => Math.Abs(lb[i] - lf[i]) / lf[i]);
        output.WriteLine($"bf16 loss: first 5 mean {early:F4}, last 5 mean {late:F4}; float32: {lf.Take(5).Average():F4} -> {lf.TakeLast(5).Average():F4}; steps 1-5 max relative diff bf16 vs float32 {maxRel:G3}");
        Assert.True(late < 0.8 * early, $"bf16 loss did not fall: {early:F4} -> {late:F4}");
        Assert.True(lf.TakeLast(5).Average() < 0.8 * lf.Take(5).Average(), "float32 loss did not fall");
        Assert.True(maxRel < 0.05, $"bf16 and float32 losses of steps 1-5 differ by {maxRel:P1}");
    }

    /// <summary>Shapes images, except that every batch after the first <paramref name="goodBatches"/> is NaN.</summary>
    sealed class PoisonedData(int goodBatches) : ITrainingData
    {
        readonly PixelTrainingData _inner = new(Shapes.Value);
        int _calls;
        public long Count => _inner.Count;

        public (Tensor x, Tensor labels) GetBatch(long[] indices, Generator generator, bool horizontalFlip)
        {
            var (x, labels) = _inner.GetBatch(indices, generator, horizontalFlip);
            if (++_calls > goodBatches) x.fill_(double.NaN);
            return (x, labels);
        }
    }

    [Fact]
    public void NonFiniteLoss_StopsNamingTheStep_AndKeepsTheLastCheckpoint()
    {
        string run = NewRunDir();
        var options = Options(10) with { CheckpointEvery = 2, SampleEvery = 2 };
        byte[]? lastSaved = null;
        using (var trainer = new DiffusionTrainer(Info(), new PoisonedData(goodBatches: 5), options, run))
        {
            // OnSample runs right after each checkpoint: remember the bytes of the last one written.
            trainer.OnSample = (_, _) => lastSaved = File.ReadAllBytes(Path.Combine(run, DiffusionTrainer.CheckpointFile));
            var e = Assert.Throws<TrainingDivergedException>(() => trainer.Run());
            output.WriteLine(e.Message);
            Assert.Contains("step 6", e.Message);
            Assert.Contains("LearningRate", e.Message);
            Assert.Contains("last good checkpoint", e.Message);
        }
        Assert.Equal((RunStatus.Failed, 5L), (RunStatus.Read(run)!.State, RunStatus.Read(run)!.Step));
        string checkpoint = Path.Combine(run, DiffusionTrainer.CheckpointFile);
        Assert.Equal(lastSaved, File.ReadAllBytes(checkpoint));
        using (var file = SafetensorsFile.Open(checkpoint))
            Assert.Equal("4", file.Metadata["ldm.train.step"]);
        Assert.Equal([1L, 2, 3, 4, 5], LoggedSteps(run));
        AssertNoTempFiles(run);
    }

    [Fact]
    public void NonFiniteLossBeforeTheFirstCheckpoint_PromisesNoCheckpoint()
    {
        string run = NewRunDir();
        using var trainer = new DiffusionTrainer(Info(), new PoisonedData(goodBatches: 1), Options(10) with { CheckpointEvery = 5 }, run);
        var e = Assert.Throws<TrainingDivergedException>(() => trainer.Run());
        Assert.Contains("step 2", e.Message);
        Assert.DoesNotContain("checkpoint", e.Message);
        Assert.False(File.Exists(Path.Combine(run, DiffusionTrainer.CheckpointFile)));
    }

    [Fact]
    public void HugeLearningRate_NeverWritesNonFiniteWeights()
    {
        string run = NewRunDir();
        var options = Options(8, lr: 1e30) with { CheckpointEvery = 1, GradClip = 0, WarmupSteps = 0 };
        try { Train(run, options); }
        catch (LdmException e) { output.WriteLine(e.Message); Assert.Contains("step", e.Message); }
        // Whatever happened, the checkpoint on disk (if any) must hold only finite numbers, so a resume with a lower
        // learning rate starts from usable weights.
        string checkpoint = Path.Combine(run, DiffusionTrainer.CheckpointFile);
        if (File.Exists(checkpoint))
            foreach (var (name, values) in Tensors(checkpoint))
                Assert.True(values.All(double.IsFinite), $"checkpoint tensor '{name}' holds non-finite values");
        AssertNoTempFiles(run);
    }

    [Fact]
    public void NonFiniteWeights_AreNeverCheckpointed()
    {
        string run = NewRunDir();
        Train(run, Options(3));
        string checkpoint = Path.Combine(run, DiffusionTrainer.CheckpointFile), model = Path.Combine(run, DiffusionTrainer.ModelFile);
        var (before, modelBefore) = (File.ReadAllBytes(checkpoint), File.ReadAllBytes(model));
        using var trainer = new DiffusionTrainer(Info(), new PixelTrainingData(Shapes.Value), Options(6), run);
        using (torch.no_grad())
            trainer.Model.named_parameters().First().parameter.view(-1)[0] = torch.tensor(float.NaN);
        var e = Assert.Throws<TrainingDivergedException>(trainer.SaveCheckpoint);
        Assert.Contains("non-finite", e.Message);
        Assert.Equal(before, File.ReadAllBytes(checkpoint));
        Assert.Equal(modelBefore, File.ReadAllBytes(model));
        AssertNoTempFiles(run);
    }

    static void AssertNoTempFiles(string dir) =>
        Assert.Empty(Directory.EnumerateFiles(dir, "*.tmp", SearchOption.AllDirectories));

    [Fact]
    public void RunFolder_HoldsExactlyTheCheckpointModelAndMetrics_WrittenAtomically()
    {
        string run = NewRunDir();
        Train(run, Options(3));
        var files = Directory.EnumerateFileSystemEntries(run).Select(Path.GetFileName).Order().ToArray();
        Assert.Equal(new[] { DiffusionTrainer.CheckpointFile, DiffusionTrainer.MetricsFile, DiffusionTrainer.ModelFile }.Order(), files);
        // model.safetensors alone rebuilds the EMA model for sampling.
        var (model, info) = DenoiserCheckpoint.Load(Path.Combine(run, DiffusionTrainer.ModelFile));
        using (model) Assert.Equal(Info().Transformer, info.Transformer);

        // A checkpoint that cannot be written (its name is taken by a folder) fails without leaving a temp file,
        // and the model file written before stays whole.
        string model0 = Path.Combine(run, DiffusionTrainer.ModelFile);
        var modelBytes = File.ReadAllBytes(model0);
        File.Delete(Path.Combine(run, DiffusionTrainer.CheckpointFile));
        Directory.CreateDirectory(Path.Combine(run, DiffusionTrainer.CheckpointFile));
        using (var trainer = new DiffusionTrainer(Info(), new PixelTrainingData(Shapes.Value), Options(3), NewRunDir()))
        {
            var blocked = new DiffusionTrainer(Info(), new PixelTrainingData(Shapes.Value), Options(3), run);
            Assert.ThrowsAny<Exception>(() => blocked.SaveCheckpoint());
            blocked.Dispose();
        }
        AssertNoTempFiles(run);
        Assert.Equal(modelBytes, File.ReadAllBytes(model0));
    }

    [Fact]
    public void ResumeWithAnotherArchitectureOrHyperparameter_IsRefusedNamingTheChange()
    {
        string run = NewRunDir();
        Train(run, Options(1));
        var deeper = TinyModels.Info(TinyModels.Config(size: 32) with { Depth = 3, HiddenSize = 64 });
        var e = Assert.Throws<RunSettingsChangedException>(() => new DiffusionTrainer(deeper, new PixelTrainingData(Shapes.Value), Options(2), run));
        output.WriteLine(e.Message);
        Assert.Contains("was started with other settings: hidden_size 32 → 64, depth 2 → 3;", e.Message);
        e = Assert.Throws<RunSettingsChangedException>(() => new DiffusionTrainer(Info(), new PixelTrainingData(Shapes.Value), Options(2, lr: 2e-3), run));
        Assert.Contains("LearningRate 0.001 → 0.002", e.Message);
        // The step budget and the intervals are not settings of the curve.
        using var trainer = new DiffusionTrainer(Info(), new PixelTrainingData(Shapes.Value), Options(5) with { LogEvery = 2, CheckpointEvery = 7 }, run);
        Assert.Equal(1L, trainer.ResumedFromStep);
    }

    [Fact]
    public void FinishedRun_SaysSo_AndALargerStepBudgetContinuesTheSameCurve()
    {
        string straight = NewRunDir(), run = NewRunDir();
        Train(straight, Options(6, seed: 4));
        Train(run, Options(3, seed: 4));
        byte[] checkpoint = File.ReadAllBytes(Path.Combine(run, DiffusionTrainer.CheckpointFile));
        using (var again = new DiffusionTrainer(Info(), new PixelTrainingData(Shapes.Value), Options(3, seed: 4), run))
        {
            Assert.True(again.IsFinished);
            Assert.Equal(3L, again.ResumedFromStep);
            again.Run();
            Assert.Empty(again.Metrics);
        }
        Assert.Equal(checkpoint, File.ReadAllBytes(Path.Combine(run, DiffusionTrainer.CheckpointFile)));
        using (var longer = new DiffusionTrainer(Info(), new PixelTrainingData(Shapes.Value), Options(6, seed: 4), run))
        {
            Assert.False(longer.IsFinished);
            longer.Run();
            Assert.True(longer.IsFinished);
        }
        Assert.Equal(Losses(straight), Losses(run));
        AssertSameTensors(Path.Combine(straight, DiffusionTrainer.CheckpointFile), Path.Combine(run, DiffusionTrainer.CheckpointFile));
    }

    [Fact]
    public void InMemoryRun_WritesNothing_AndMatchesTheRunFolder()
    {
        string onDisk = NewRunDir();
        Train(onDisk, Options(4, seed: 3));
        var before = Directory.EnumerateFileSystemEntries(Directory.GetCurrentDirectory()).Count();
        using var trainer = new DiffusionTrainer(Info(), new PixelTrainingData(Shapes.Value), Options(4, seed: 3), runDir: null);
        var progress = new List<double>();
        trainer.Run(p => progress.Add(p.Loss));
        Assert.Null(trainer.RunDir);
        Assert.Null(trainer.ResumedFromStep);
        Assert.Equal(before, Directory.EnumerateFileSystemEntries(Directory.GetCurrentDirectory()).Count());
        Assert.Equal(Losses(onDisk), trainer.Metrics.Select(m => (double)m["loss"]).ToArray());
        Assert.Equal(Losses(onDisk), progress);
        using var file = SafetensorsFile.Open(Path.Combine(onDisk, DiffusionTrainer.CheckpointFile));
        foreach (var (name, p) in trainer.EmaModel.named_parameters())
        {
            using var saved = file.Read("ema." + name);
            Assert.True(saved.equal(p).all().item<bool>(), $"EMA weight '{name}' differs from the run folder's");
        }
    }
}
