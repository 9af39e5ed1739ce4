using LatentDiffusion.Autoencoders;
using LatentDiffusion.Training;

namespace LatentDiffusion.Tests;

/// <summary>
/// Issue 12, part 5: a training command that fails before it has trained anything removes the run folder it created
/// (with the parents it created), but never a folder that existed before and never a folder holding a run.
/// </summary>
[Collection(ConsoleCollection.Name)]
public sealed class RunFolderCleanupTests : IDisposable
{
    readonly string _dir = RepoPaths.NewTempDir("run-folder");

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    // ---- RunFolder ----

    [Fact]
    public void RunFolder_RemovesOnlyWhatItCreated_AndNeverARun()
    {
        string nested = Path.Combine(_dir, "a", "b", "run");
        var fresh = RunFolder.Claim(nested);
        Assert.True(fresh.IsNew);
        Directory.CreateDirectory(nested);
        File.WriteAllText(Path.Combine(nested, "partial.txt"), "x");
        Assert.True(fresh.RemoveIfUnused());
        Assert.False(Directory.Exists(Path.Combine(_dir, "a")));   // the parents it created go too
        Assert.True(Directory.Exists(_dir));

        string existing = Path.Combine(_dir, "existing");
        Directory.CreateDirectory(existing);
        var old = RunFolder.Claim(existing);
        Assert.False(old.IsNew);
        Assert.False(old.RemoveIfUnused());
        Assert.True(Directory.Exists(existing));

        // A new folder that came to hold a run (a checkpoint, or logged metrics) stays.
        foreach (var file in new[] { TrainingRun.CheckpointFile, TrainingRun.MetricsFile })
        {
            string run = Path.Combine(_dir, "run-" + file);
            var claimed = RunFolder.Claim(run);
            Directory.CreateDirectory(run);
            File.WriteAllText(Path.Combine(run, file), "{\"step\":1}\n");
            Assert.False(claimed.RemoveIfUnused());
            Assert.True(File.Exists(Path.Combine(run, file)));
        }
        // An empty metrics log (a run opened but not one step logged) is no run.
        string empty = Path.Combine(_dir, "empty-log");
        var emptyClaim = RunFolder.Claim(empty);
        Directory.CreateDirectory(empty);
        File.WriteAllText(Path.Combine(empty, TrainingRun.MetricsFile), "");
        Assert.True(emptyClaim.RemoveIfUnused());
    }

    // ---- the commands ----

    /// <summary>An image folder of one class whose only image is not an image.</summary>
    string BadImageFolder()
    {
        string data = Path.Combine(_dir, "bad-data");
        Directory.CreateDirectory(Path.Combine(data, "cats"));
        File.WriteAllBytes(Path.Combine(data, "cats", "0.png"), [0x89, 0x50, 0x4E, 0x47, 1, 2, 3]);
        return data;
    }

    static string[] Train(string data, string run, params string[] more) =>
        ["train", "--dtype", "float32", "--threads", "1", "--data", data, "--preset", "S/4", "--hidden-size", "32", "--depth", "2", "--num-heads", "2",
         "--steps", "1", "--batch-size", "4", "--sample-steps", "1", "--out", run, .. more];

    static void AssertUserError(CliResult r)
    {
        Assert.True(r.ExitCode == 1, r.ToString());
        Assert.Single(r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("error: ", r.Stderr);
    }

    [Fact]
    public void Train_FailingOnItsData_RemovesTheNewRunFolder_ButNotAnExistingOne()
    {
        string data = BadImageFolder();
        string run = Path.Combine(_dir, "runs", "new");
        AssertUserError(CliTestHost.Run(Train(data, run)));
        Assert.False(Directory.Exists(Path.Combine(_dir, "runs")));

        string existing = Path.Combine(_dir, "existing");
        Directory.CreateDirectory(existing);
        File.WriteAllText(Path.Combine(existing, "notes.txt"), "mine");
        AssertUserError(CliTestHost.Run(Train(data, existing)));
        Assert.True(File.Exists(Path.Combine(existing, "notes.txt")));
    }

    [Fact]
    public void Train_FailingAtItsFirstStep_RemovesTheNewRunFolderWithItsLatents()
    {
        // Horizontal flips cannot mirror latents: found at the first step, after the images were encoded into RUN/latents.
        string ae = Path.Combine(_dir, "ae.safetensors");
        using (var model = new AutoencoderKL(Autoencoders.AutoencoderKeysTests.Tiny with { Resolution = 32 })) model.Save(ae);
        string run = Path.Combine(_dir, "latent-run");
        var r = CliTestHost.Run(Train("shapes:count=8", run, "--autoencoder", ae, "--flip"));
        AssertUserError(r);
        Assert.Contains("flip", r.Stderr);
        Assert.False(Directory.Exists(run), r.ToString());
    }

    [Fact]
    public void Train_AResumableRunFailingOnItsData_KeepsItsFolder()
    {
        string run = Path.Combine(_dir, "run");
        var first = CliTestHost.Run(Train("shapes:count=8", run));
        Assert.True(first.ExitCode == 0, first.ToString());
        AssertUserError(CliTestHost.Run(Train(BadImageFolder(), run, "--steps", "2")));
        Assert.True(File.Exists(Path.Combine(run, TrainingRun.CheckpointFile)));
        Assert.True(File.Exists(Path.Combine(run, DiffusionTrainer.ModelFile)));
    }

    [Fact]
    public void TrainAutoencoder_FailingOnItsData_LeavesNoRunFolder()
    {
        string run = Path.Combine(_dir, "ae-run");
        AssertUserError(CliTestHost.Run("train-autoencoder", "--threads", "1", "--data", BadImageFolder(), "--config", "f4-32-small", "--steps", "1",
            "--batch-size", "2", "--out", run));
        Assert.False(Directory.Exists(run));
    }
}
