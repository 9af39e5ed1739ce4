using System.Diagnostics;
using LatentDiffusion.Training;
using Xunit.Abstractions;

namespace LatentDiffusion.Tests;

/// <summary>The quick-start loop in miniature through the real command line: `ldm train` on shapes, then `ldm sample` from its model.</summary>
[Collection(ConsoleCollection.Name)]
public sealed class QuickstartSmokeTest(ITestOutputHelper output) : IDisposable
{
    readonly string _dir = RepoPaths.NewTempDir("quickstart");

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    [Fact]
    public void TrainThenSample_OnShapes_InSeconds()
    {
        var clock = Stopwatch.StartNew();
        string run = Path.Combine(_dir, "run"), samples = Path.Combine(_dir, "samples");
        var train = CliTestHost.Run("train", "--data", "shapes:count=64", "--out", run, "--steps", "3", "--hidden-size", "32", "--depth", "2",
            "--num-heads", "2", "--patch-size", "8", "--batch-size", "8", "--log-every", "1", "--seed", "1");
        Assert.True(train.ExitCode == 0, train.ToString());
        double trainSeconds = clock.Elapsed.TotalSeconds;
        string model = Path.Combine(run, DiffusionTrainer.ModelFile);
        Assert.True(File.Exists(model));
        Assert.Contains(model, train.Stdout);
        // The model line states the cost per image, counted from the config.
        var cost = Diffusion.ModelCost.Of(Denoisers.DenoiserCheckpoint.PeekInfo(model).Backbone);
        Assert.Contains($"; {Diffusion.ModelCost.FormatFlops(cost.ForwardFlops)} forward per image", train.Stdout);
        Assert.Equal(3, MetricsLog.Read(Path.Combine(run, DiffusionTrainer.MetricsFile)).Count);
        Assert.True(File.Exists(Path.Combine(run, "samples_0000003.png")), "the end-of-run sample grid is missing");
        Assert.Empty(Directory.GetFiles(run, "*.tmp"));

        var sample = CliTestHost.Run("sample", "--model", model, "--out", samples, "--classes", "all", "--num", "12", "--steps", "5");
        Assert.True(sample.ExitCode == 0, sample.ToString());
        Assert.Equal(13, Directory.GetFiles(samples, "*.png").Length);
        Assert.Contains("grid.png", sample.Stdout);
        output.WriteLine($"train 3 steps: {trainSeconds:F1} s; train + sample: {clock.Elapsed.TotalSeconds:F1} s");
        output.WriteLine(train.Stdout);
        Assert.True(clock.Elapsed.TotalSeconds < 60, $"the miniature quick start took {clock.Elapsed.TotalSeconds:F0} s");
    }
}
