using LatentDiffusion.Denoisers;
using LatentDiffusion.Diffusion;
using LatentDiffusion.Training;

namespace LatentDiffusion.Tests;

/// <summary>`ldm train --noise-schedule scaled-linear --beta-start --beta-end`: the model file states the schedule and samples.</summary>
[Collection(ConsoleCollection.Name)]
public sealed class ScaledLinearTrainCliTests : IDisposable
{
    readonly string _dir = RepoPaths.NewTempDir("scaled-linear-cli");
    public void Dispose() { try { Directory.Delete(_dir, true); } catch (IOException) { } }

    [Fact]
    public void TrainWithStableDiffusionEnds_ThenSample()
    {
        string run = Path.Combine(_dir, "run");
        var train = CliTestHost.Run("train", "--data", "shapes:count=16", "--out", run, "--steps", "2", "--hidden-size", "32", "--depth", "1",
            "--num-heads", "2", "--patch-size", "8", "--batch-size", "4", "--noise-schedule", "scaled_linear", "--beta-start", "0.00085", "--beta-end", "0.012");
        Assert.True(train.ExitCode == 0, train.ToString());
        Assert.Contains("on the scaled-linear schedule (betas 0.00085 to 0.012)", train.Stdout);
        string model = Path.Combine(run, DiffusionTrainer.ModelFile);
        var diffusion = DenoiserCheckpoint.PeekInfo(model).Diffusion;
        Assert.Equal(("scaled-linear", 0.00085, 0.012), (diffusion.Schedule, diffusion.BetaStart!.Value, diffusion.BetaEnd!.Value));

        var sample = CliTestHost.Run("sample", "--model", model, "--out", Path.Combine(_dir, "samples"), "--classes", "0,1", "--steps", "3");
        Assert.True(sample.ExitCode == 0, sample.ToString());
        Assert.True(File.Exists(Path.Combine(_dir, "samples", "grid.png")));
    }
}
