using LatentDiffusion.Autoencoders;
using LatentDiffusion.Data;
using LatentDiffusion.IO;
using LatentDiffusion.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests.Autoencoders;

public sealed class AutoencoderTrainerTests
{
    // f=2, 32 channels: small enough for a few CPU steps in a second or two.
    static readonly AutoencoderConfig Tiny = new()
    {
        Ch = 32, ChMult = [1, 2], NumResBlocks = 1, AttnResolutions = [], ZChannels = 4, EmbedDim = 4,
        InChannels = 3, OutCh = 3, Resolution = 32,
    };

    [Fact]
    public void TinyAutoencoderLossFallsOnShapesAndTheRunWritesItsFiles()
    {
        using var data = ShapesDataset.Generate(64, seed: 1, text: false);
        string dir = RepoPaths.NewTempDir("ae-train");
        var options = new AutoencoderTrainingOptions
        {
            Steps = 30, BatchSize = 8, LearningRate = 1e-3, Seed = 1, SampleEvery = 30, CheckpointEvery = 30, ScaleSamples = 32, EmaDecay = 0.9,
        };
        using var trainer = new AutoencoderTrainer(Tiny, data, options, dir);
        var l1 = new List<double>();
        trainer.Run(r => l1.Add(r.L1));
        Assert.Equal(30, l1.Count);
        double first = l1.Take(5).Average(), last = l1.TakeLast(5).Average();
        Assert.True(last < 0.7 * first, $"L1 did not fall: first steps {first:F4}, last steps {last:F4}");

        Assert.True(File.Exists(Path.Combine(dir, "samples", "recon_000030.png")));
        Assert.Equal(30, File.ReadAllLines(Path.Combine(dir, AutoencoderTrainer.MetricsFile)).Length);
        using var model = AutoencoderKL.Load(Path.Combine(dir, AutoencoderTrainer.ModelFile));
        Assert.True(model.LatentScale > 0 && double.IsFinite(model.LatentScale));
        var (evalL1, psnr) = AutoencoderEvaluation.Reconstruction(model, data, 16);
        Assert.True(evalL1 is > 0 and < 1 && psnr > 0);

        var again = Assert.Throws<LdmException>(() => new AutoencoderTrainer(Tiny, data, options, dir));
        Assert.Contains("--resume", again.Message);
    }

    [Fact]
    public void ResumeRepeatsTheUninterruptedLossSequence()
    {
        using var data = ShapesDataset.Generate(10, seed: 2, text: false);
        // Batch 4 over 10 images crosses epochs; flips and the GAN (from step 2) exercise every random stream and both optimizers.
        var options = new AutoencoderTrainingOptions
        {
            Steps = 6, BatchSize = 4, LearningRate = 1e-3, Seed = 5, HorizontalFlip = true,
            DiscriminatorStart = 2, DiscriminatorLayers = 2, DiscriminatorChannels = 8, SampleEvery = 0,
        };
        List<AutoencoderStepResult> straight;
        using (var t = new AutoencoderTrainer(Tiny, data, options, RepoPaths.NewTempDir("ae-straight")))
            straight = Enumerable.Range(0, 6).Select(_ => t.TrainStep()).ToList();
        Assert.True(straight[5].DiscriminatorLoss > 0 && straight[5].AdaptiveWeight > 0);

        string dir = RepoPaths.NewTempDir("ae-resume");
        var resumed = new List<AutoencoderStepResult>();
        using (var t = new AutoencoderTrainer(Tiny, data, options, dir))
        {
            for (int i = 0; i < 3; i++) resumed.Add(t.TrainStep());
            t.SaveCheckpoint();
            t.TrainStep(); // done after the checkpoint, then "crash": must be redone identically
        }
        using (var t = AutoencoderTrainer.Resume(dir, data))
        {
            Assert.Equal(3, t.Step);
            for (int i = 0; i < 3; i++) resumed.Add(t.TrainStep());
        }
        Assert.Equal(straight, resumed);
    }

    [Fact]
    public void ResumeWithoutStateAndMismatchedDataAreUserErrors()
    {
        using var data = ShapesDataset.Generate(4, seed: 3, text: false);
        var e = Assert.Throws<LdmException>(() => AutoencoderTrainer.Resume(RepoPaths.NewTempDir("ae-none"), data));
        Assert.Contains("no train_state", e.Message);
        var gray = Tiny with { InChannels = 1, OutCh = 1 };
        e = Assert.Throws<LdmException>(() => new AutoencoderTrainer(gray, data, new AutoencoderTrainingOptions(), RepoPaths.NewTempDir("ae-gray")));
        Assert.Contains("3-channel", e.Message);
    }
}
