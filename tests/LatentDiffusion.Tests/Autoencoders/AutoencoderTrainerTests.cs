using LatentDiffusion.Autoencoders;
using LatentDiffusion.Data;
using LatentDiffusion.IO;
using LatentDiffusion.Training;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests.Autoencoders;

/// <summary>
/// The autoencoder trainer on a tiny f=2 model: the loss falls, the run folder, and the shared run behaviour (exact
/// resume, finished runs, larger step budgets, refused setting changes, runs in memory).
/// </summary>
public sealed class AutoencoderTrainerTests(ITestOutputHelper output)
{
    // f=2, 32 channels: small enough for a few CPU steps in a second or two.
    static readonly AutoencoderConfig Tiny = new()
    {
        Ch = 32, ChMult = [1, 2], NumResBlocks = 1, AttnResolutions = [], ZChannels = 4, EmbedDim = 4,
        InChannels = 3, OutCh = 3, Resolution = 32,
    };

    // Batch 4 over 10 images crosses epochs; flips and the GAN (from step 2) exercise every random stream and both optimizers.
    static readonly AutoencoderTrainingOptions GanOptions = new()
    {
        Steps = 6, BatchSize = 4, LearningRate = 1e-3, Seed = 5, HorizontalFlip = true, WarmupSteps = 2,
        DiscriminatorStart = 2, DiscriminatorLayers = 2, DiscriminatorChannels = 8, SampleEvery = 0, ScaleSamples = 8, LogEvery = 1,
    };

    static List<AutoencoderStepResult> Steps(AutoencoderTrainer trainer, int count) =>
        Enumerable.Range(0, count).Select(_ => trainer.TrainStep()).ToList();

    /// <summary>Every tensor of a checkpoint as float64 arrays, by name.</summary>
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
    public void TinyAutoencoderLossFallsOnShapesAndTheRunWritesItsFiles()
    {
        using var data = ShapesDataset.Generate(64, seed: 1, text: false);
        string dir = RepoPaths.NewTempDir("ae-train");
        var options = new AutoencoderTrainingOptions
        {
            Steps = 30, BatchSize = 8, LearningRate = 1e-3, Seed = 1, SampleEvery = 30, CheckpointEvery = 30, ScaleSamples = 32, EmaDecay = 0.9,
            LogEvery = 1,
        };
        using (var trainer = new AutoencoderTrainer(Tiny, data, options, dir))
        {
            var l1 = new List<double>();
            trainer.Run(r => l1.Add(r.L1));
            Assert.Equal(30, l1.Count);
            double first = l1.Take(5).Average(), last = l1.TakeLast(5).Average();
            Assert.True(last < 0.7 * first, $"L1 did not fall: first steps {first:F4}, last steps {last:F4}");
        }

        Assert.True(File.Exists(Path.Combine(dir, "samples", "recon_000030.png")));
        Assert.Equal(30, File.ReadAllLines(Path.Combine(dir, AutoencoderTrainer.MetricsFile)).Length);
        Assert.True(File.Exists(Path.Combine(dir, AutoencoderTrainer.CheckpointFile)));
        using var model = AutoencoderKL.Load(Path.Combine(dir, AutoencoderTrainer.ModelFile));
        Assert.True(model.LatentScale > 0 && double.IsFinite(model.LatentScale));
        var (evalL1, psnr) = AutoencoderEvaluation.Reconstruction(model, data, 16);
        Assert.True(evalL1 is > 0 and < 1 && psnr > 0);
        Assert.Empty(Directory.EnumerateFiles(dir, "*.tmp", SearchOption.AllDirectories));
    }

    [Fact]
    public void ResumeRepeatsTheUninterruptedLossSequenceAndWeights()
    {
        using var data = ShapesDataset.Generate(10, seed: 2, text: false);
        string straightDir = RepoPaths.NewTempDir("ae-straight");
        List<AutoencoderStepResult> straight;
        using (var t = new AutoencoderTrainer(Tiny, data, GanOptions, straightDir))
        {
            straight = Steps(t, 6);
            t.SaveCheckpoint();
        }
        Assert.True(straight[5].DiscriminatorLoss > 0 && straight[5].AdaptiveWeight > 0);

        string dir = RepoPaths.NewTempDir("ae-resume");
        var resumed = new List<AutoencoderStepResult>();
        using (var t = new AutoencoderTrainer(Tiny, data, GanOptions, dir))
        {
            Assert.Null(t.ResumedFromStep);
            resumed.AddRange(Steps(t, 3));
            t.SaveCheckpoint();
            t.TrainStep(); // done after the checkpoint, then "crash": must be redone identically
        }
        using (var t = new AutoencoderTrainer(Tiny, data, GanOptions, dir))
        {
            Assert.Equal(3L, t.ResumedFromStep);
            Assert.Equal(3L, t.Step);
            resumed.AddRange(Steps(t, 3));
            t.SaveCheckpoint();
        }
        Assert.Equal(straight, resumed);
        AssertSameTensors(Path.Combine(straightDir, AutoencoderTrainer.CheckpointFile), Path.Combine(dir, AutoencoderTrainer.CheckpointFile));
        Assert.Equal([1L, 2, 3, 4, 5, 6], MetricsLog.Read(Path.Combine(dir, AutoencoderTrainer.MetricsFile)).Select(l => l["step"].GetInt64()));
    }

    [Fact]
    public void FinishedRunSaysSo_AndALargerStepBudgetContinuesExactly()
    {
        using var data = ShapesDataset.Generate(10, seed: 2, text: false);
        string straight = RepoPaths.NewTempDir("ae-six"), dir = RepoPaths.NewTempDir("ae-three");
        using (var t = new AutoencoderTrainer(Tiny, data, GanOptions, straight)) t.Run();
        using (var t = new AutoencoderTrainer(Tiny, data, GanOptions with { Steps = 3 }, dir)) t.Run();
        Assert.True(File.Exists(Path.Combine(dir, AutoencoderTrainer.ModelFile)));
        byte[] checkpoint = File.ReadAllBytes(Path.Combine(dir, AutoencoderTrainer.CheckpointFile));
        using (var t = new AutoencoderTrainer(Tiny, data, GanOptions with { Steps = 3 }, dir))
        {
            Assert.True(t.IsFinished);
            Assert.Equal(3L, t.ResumedFromStep);
            Assert.Null(t.Run());
        }
        Assert.Equal(checkpoint, File.ReadAllBytes(Path.Combine(dir, AutoencoderTrainer.CheckpointFile)));
        using (var t = new AutoencoderTrainer(Tiny, data, GanOptions, dir))
        {
            Assert.False(t.IsFinished);
            Assert.Equal(6, t.Run()!.Step);
        }
        AssertSameTensors(Path.Combine(straight, AutoencoderTrainer.CheckpointFile), Path.Combine(dir, AutoencoderTrainer.CheckpointFile));
        AssertSameTensors(Path.Combine(straight, AutoencoderTrainer.ModelFile), Path.Combine(dir, AutoencoderTrainer.ModelFile));
    }

    [Fact]
    public void ChangedArchitectureOrHyperparameters_AreRefusedNamingThem()
    {
        using var data = ShapesDataset.Generate(10, seed: 2, text: false);
        string dir = RepoPaths.NewTempDir("ae-changed");
        using (var t = new AutoencoderTrainer(Tiny, data, GanOptions with { Steps = 1 }, dir)) t.Run();
        var e = Assert.Throws<RunSettingsChangedException>(() => new AutoencoderTrainer(Tiny with { Ch = 64 }, data, GanOptions, dir));
        output.WriteLine(e.Message);
        Assert.Contains("was started with other settings: ch 32 → 64;", e.Message);
        e = Assert.Throws<RunSettingsChangedException>(() => new AutoencoderTrainer(Tiny, data, GanOptions with { KlWeight = 1e-3, Seed = 6 }, dir));
        output.WriteLine(e.Message);
        Assert.Contains("KlWeight", e.Message);
        Assert.Contains("Seed 5 → 6", e.Message);
    }

    [Fact]
    public void InMemoryRunWritesNothing_AndMatchesTheRunFolder()
    {
        using var data = ShapesDataset.Generate(10, seed: 2, text: false);
        string dir = RepoPaths.NewTempDir("ae-disk");
        List<AutoencoderStepResult> onDisk = [], inMemory = [];
        using (var t = new AutoencoderTrainer(Tiny, data, GanOptions, dir)) t.Run(onDisk.Add);
        int filesBefore = Directory.EnumerateFileSystemEntries(Directory.GetCurrentDirectory()).Count();
        using (var t = new AutoencoderTrainer(Tiny, data, GanOptions, runDir: null))
        {
            t.Run(inMemory.Add);
            Assert.Equal(6, t.Metrics.Count);
            using var saved = AutoencoderKL.Load(Path.Combine(dir, AutoencoderTrainer.ModelFile));
            Assert.Equal(saved.LatentScale, t.Ema.LatentScale);
            Assert.Throws<LdmException>(() => t.SaveReconstructionGrid());
        }
        Assert.Equal(onDisk, inMemory);
        Assert.Equal(filesBefore, Directory.EnumerateFileSystemEntries(Directory.GetCurrentDirectory()).Count());
    }

    [Fact]
    public void MismatchedDataAndOldTrainingStatesAreUserErrors()
    {
        using var data = ShapesDataset.Generate(4, seed: 3, text: false);
        var gray = Tiny with { InChannels = 1, OutCh = 1 };
        var e = Assert.Throws<LdmException>(() => new AutoencoderTrainer(gray, data, new AutoencoderTrainingOptions(), RepoPaths.NewTempDir("ae-gray")));
        Assert.Contains("3-channel", e.Message);
        string old = RepoPaths.NewTempDir("ae-old");
        File.WriteAllText(Path.Combine(old, "train_state.safetensors"), "");
        e = Assert.Throws<LdmException>(() => new AutoencoderTrainer(Tiny, data, new AutoencoderTrainingOptions(), old));
        Assert.Contains("choose a new run folder", e.Message);
        var bad = Assert.Throws<LdmOptionException>(() => new AutoencoderTrainer(Tiny, data, new AutoencoderTrainingOptions { Steps = 0 }, null));
        Assert.Equal("AutoencoderTrainingOptions.Steps must be at least 1, got 0.", bad.Message);
    }
}
