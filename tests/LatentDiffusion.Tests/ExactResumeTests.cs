using LatentDiffusion.Autoencoders;
using LatentDiffusion.Data;
using LatentDiffusion.IO;
using LatentDiffusion.Training;

namespace LatentDiffusion.Tests;

/// <summary>
/// Issue 12, part 4, in the library: a run stopped in the middle of a log interval (the checkpoint interval not a
/// multiple of the log interval, a cancel, a finished run given more steps) and resumed writes the metrics log of an
/// uninterrupted run, byte for byte apart from the wall-clock fields, and ends with the same weights; for both trainers.
/// (<see cref="KillResumeTests"/> does the same with kill -9 through the command line.)
/// </summary>
[Collection(ConsoleCollection.Name)]
public sealed class ExactResumeTests : IDisposable
{
    readonly SingleTorchThread _threads = new();
    readonly string _dir = RepoPaths.NewTempDir("exact-resume");

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
        _threads.Dispose();
    }

    static readonly Lazy<ImageDataset> Shapes = new(() => ShapesDataset.Generate(32, 3, text: false));

    // Log every 3 steps, checkpoint every 5: the checkpoints at 5 and 10 fall inside log intervals.
    static DiffusionTrainingOptions Diffusion(int steps) => new()
    {
        Steps = steps, BatchSize = 4, LearningRate = 1e-3, Seed = 11, EmaDecay = 0.9, LogEvery = 3, CheckpointEvery = 5, HorizontalFlip = true,
    };

    static readonly AutoencoderConfig TinyAutoencoder = new()
    {
        Ch = 32, ChMult = [1, 2], NumResBlocks = 1, AttnResolutions = [], ZChannels = 4, EmbedDim = 4, InChannels = 3, OutCh = 3, Resolution = 32,
    };

    static AutoencoderTrainingOptions Autoencoder(int steps) => new()
    {
        Steps = steps, BatchSize = 4, LearningRate = 1e-3, Seed = 11, LogEvery = 3, CheckpointEvery = 5, SampleEvery = 0, ScaleSamples = 8,
    };

    string NewRun(string name) => Path.Combine(_dir, name);

    [Fact]
    public void DiffusionRun_StoppedInsideLogIntervals_WritesTheUninterruptedLogAndWeights()
    {
        string straight = NewRun("straight"), stopped = NewRun("stopped");
        var info = TinyModels.Info(TinyModels.Config(size: 32));
        DiffusionTrainer Trainer(string dir, int steps) => new(info, new PixelTrainingData(Shapes.Value), Diffusion(steps), dir);

        using (var t = Trainer(straight, 12)) t.Run();
        // A finished 7-step run (its last entry, step 7, averages one step of the interval 7-9), given 12 steps ...
        using (var t = Trainer(stopped, 7)) t.Run();
        Assert.Equal([3L, 6, 7], Steps(stopped));
        // ... cancelled after step 8 (a checkpoint in the middle of the interval) ...
        using (var t = Trainer(stopped, 12))
        {
            using var cancel = new CancellationTokenSource();
            t.Run(p => { if (p.Step == 8) cancel.Cancel(); }, cancel.Token);
            Assert.Equal(8L, t.Step);
        }
        // ... and resumed from that checkpoint (at 10 the checkpoint falls inside the interval 10-12 again).
        using (var t = Trainer(stopped, 12))
        {
            Assert.Equal(8L, t.ResumedFromStep);
            t.Run();
        }
        Assert.Equal([3L, 6, 9, 12], Steps(straight));
        AssertSameRun(straight, stopped, DiffusionTrainer.CheckpointFile, DiffusionTrainer.ModelFile);
    }

    [Fact]
    public void AutoencoderRun_StoppedInsideLogIntervals_WritesTheUninterruptedLogAndWeights()
    {
        string straight = NewRun("ae-straight"), stopped = NewRun("ae-stopped");
        AutoencoderTrainer Trainer(string dir, int steps) => new(TinyAutoencoder, Shapes.Value, Autoencoder(steps), dir);

        using (var t = Trainer(straight, 12)) t.Run();
        using (var t = Trainer(stopped, 7)) t.Run();
        using (var t = Trainer(stopped, 12))
        {
            using var cancel = new CancellationTokenSource();
            t.Run(r => { if (r.Step == 8) cancel.Cancel(); }, cancel.Token);
        }
        using (var t = Trainer(stopped, 12))
        {
            Assert.Equal(8L, t.ResumedFromStep);
            t.Run();
        }
        Assert.Equal([3L, 6, 9, 12], Steps(straight));
        AssertSameRun(straight, stopped, AutoencoderTrainer.CheckpointFile, AutoencoderTrainer.ModelFile);
    }

    static long[] Steps(string run) =>
        MetricsLog.Read(Path.Combine(run, TrainingRun.MetricsFile)).Select(e => e["step"].GetInt64()).ToArray();

    /// <summary>The metrics logs agree byte for byte apart from the wall-clock fields; the checkpoint and the published
    /// model are the same bytes.</summary>
    internal static void AssertSameRun(string straight, string resumed, params string[] files)
    {
        var expected = MetricsLog.DeterministicLines(Path.Combine(straight, TrainingRun.MetricsFile));
        var actual = MetricsLog.DeterministicLines(Path.Combine(resumed, TrainingRun.MetricsFile));
        Assert.Equal(string.Join("\n", expected), string.Join("\n", actual));
        foreach (var file in files)
            Assert.True(File.ReadAllBytes(Path.Combine(straight, file)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(resumed, file))),
                $"{file} differs between the uninterrupted and the resumed run");
    }
}
