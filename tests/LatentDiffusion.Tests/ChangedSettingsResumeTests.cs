using System.Text.Json;
using System.Text.Json.Nodes;
using LatentDiffusion.Autoencoders;
using LatentDiffusion.Data;
using LatentDiffusion.IO;
using LatentDiffusion.Training;
using Xunit.Abstractions;

namespace LatentDiffusion.Tests;

/// <summary>
/// Issue 12, part 5: a resume that asks for other settings (learning rate, batch size, model shape, data size) names
/// each change old → new and is refused unless changes are allowed (AllowChangedSettings, --allow-changed-settings),
/// in both trainers and both commands; a larger step budget, the intervals and --sample-steps need no permission; runs
/// saved before the data size was recorded still resume.
/// </summary>
[Collection(ConsoleCollection.Name)]
public sealed class ChangedSettingsResumeTests(ITestOutputHelper output) : IDisposable
{
    readonly SingleTorchThread _threads = new();
    readonly string _dir = RepoPaths.NewTempDir("changed-settings");

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
        _threads.Dispose();
    }

    static readonly Lazy<ImageDataset> Shapes32 = new(() => ShapesDataset.Generate(32, 3, text: false));
    static readonly Lazy<ImageDataset> Shapes16 = new(() => ShapesDataset.Generate(16, 3, text: false));

    static DiffusionTrainingOptions Options(int steps) => new() { Steps = steps, BatchSize = 4, LearningRate = 1e-3, LogEvery = 1, CheckpointEvery = 10 };

    static readonly AutoencoderConfig TinyAutoencoder = new()
    {
        Ch = 32, ChMult = [1, 2], NumResBlocks = 1, AttnResolutions = [], ZChannels = 4, EmbedDim = 4, InChannels = 3, OutCh = 3, Resolution = 32,
    };

    static DiffusionTrainer Diffusion(string run, DiffusionTrainingOptions options, ImageDataset? data = null) =>
        new(TinyModels.Info(TinyModels.Config(size: 32)), new PixelTrainingData(data ?? Shapes32.Value), options, run);

    string Checkpoint(string run) => Path.Combine(run, TrainingRun.CheckpointFile);

    [Fact]
    public void DiffusionResume_WithChangedSettings_IsRefusedNamingEachChange_AndGoesOnWhenAllowed()
    {
        string run = Path.Combine(_dir, "run");
        using (var t = Diffusion(run, Options(1))) t.Run();
        byte[] before = File.ReadAllBytes(Checkpoint(run));

        var changed = Options(2) with { LearningRate = 2e-3, BatchSize = 8 };
        var e = Assert.Throws<RunSettingsChangedException>(() => Diffusion(run, changed, Shapes16.Value));
        output.WriteLine(e.Message);
        Assert.Equal(["BatchSize 4 → 8", "LearningRate 0.001 → 0.002", "data.count 32 → 16"], e.Changes.Select(c => c.Describe()).Order(StringComparer.Ordinal));
        Assert.Contains("was started with other settings: ", e.Message);
        Assert.Contains("AllowChangedSettings", e.Message);
        Assert.Equal(nameof(DiffusionTrainingOptions), e.Changes.Single(c => c.Name == "BatchSize").Owner);
        Assert.Equal(before, File.ReadAllBytes(Checkpoint(run)));

        // A larger budget, other intervals and another dtype are no change of the run.
        using (var t = Diffusion(run, Options(2) with { LogEvery = 2, CheckpointEvery = 3, SampleEvery = 5, Dtype = ComputeDtype.Auto }))
            Assert.Empty(t.ChangedSettings);

        using (var t = Diffusion(run, changed with { AllowChangedSettings = true }, Shapes16.Value))
        {
            Assert.Equal(1L, t.ResumedFromStep);
            Assert.Equal(3, t.ChangedSettings.Count);
            t.Run();
        }
        // The run now holds the new settings: they resume without permission, the old ones are a change.
        using (var t = Diffusion(run, changed with { Steps = 3 }, Shapes16.Value)) Assert.Empty(t.ChangedSettings);
        Assert.Throws<RunSettingsChangedException>(() => Diffusion(run, Options(3)));
    }

    [Fact]
    public void ARunSavedBeforeTheDataSizeWasRecorded_StillResumes()
    {
        string run = Path.Combine(_dir, "old");
        using (var t = Diffusion(run, Options(1))) t.Run();
        // Rewrite the checkpoint as earlier versions wrote it: settings without data.count.
        using (var scope = TorchSharp.torch.NewDisposeScope())
        {
            Dictionary<string, TorchSharp.torch.Tensor> tensors;
            Dictionary<string, string> meta;
            using (var file = SafetensorsFile.Open(Checkpoint(run)))
            {
                tensors = file.ReadAll().ToDictionary(kv => kv.Key, kv => kv.Value);
                meta = file.Metadata.ToDictionary(kv => kv.Key, kv => kv.Value);
            }
            var settings = JsonSerializer.Deserialize<Dictionary<string, string>>(meta[TrainingRun.SettingsKey])!;
            Assert.True(settings.Remove(RunSettingChange.DataCount));
            meta[TrainingRun.SettingsKey] = JsonSerializer.Serialize(settings);
            SafetensorsWriter.Write(Checkpoint(run), tensors, meta);
        }
        using var resumed = Diffusion(run, Options(2), Shapes16.Value);
        Assert.Equal(1L, resumed.ResumedFromStep);
        Assert.Empty(resumed.ChangedSettings);
    }

    [Fact]
    public void AutoencoderResume_WithChangedSettings_IsRefusedNamingEachChange_AndGoesOnWhenAllowed()
    {
        string run = Path.Combine(_dir, "ae");
        var options = new AutoencoderTrainingOptions { Steps = 1, BatchSize = 4, LearningRate = 1e-3, SampleEvery = 0, ScaleSamples = 4 };
        using (var t = new AutoencoderTrainer(TinyAutoencoder, Shapes32.Value, options, run)) t.Run();
        var changed = options with { Steps = 2, KlWeight = 1e-3 };
        var e = Assert.Throws<RunSettingsChangedException>(() => new AutoencoderTrainer(TinyAutoencoder with { Ch = 64 }, Shapes16.Value, changed, run));
        output.WriteLine(e.Message);
        Assert.Equal(["KlWeight 1E-06 → 0.001", "ch 32 → 64", "data.count 32 → 16"], e.Changes.Select(c => c.Describe()).Order(StringComparer.Ordinal));
        using (var t = new AutoencoderTrainer(TinyAutoencoder, Shapes16.Value, changed with { AllowChangedSettings = true }, run))
        {
            Assert.Equal(1L, t.ResumedFromStep);
            Assert.Equal(["KlWeight", "data.count"], t.ChangedSettings.Select(c => c.Name).Order(StringComparer.Ordinal));
        }
        using (var t = new AutoencoderTrainer(TinyAutoencoder, Shapes32.Value, options with { Steps = 3, CheckpointEvery = 7, LogEvery = 2 }, run))
            Assert.Empty(t.ChangedSettings);
    }

    // ---- the commands ----

    /// <summary>The command with its default options, each replaced where <paramref name="overrides"/> (option, value pairs, or a lone flag) names it.</summary>
    static string[] Args(string command, string[] defaults, string[] overrides)
    {
        var given = overrides.Where(o => o.StartsWith("--", StringComparison.Ordinal)).ToHashSet();
        var args = new List<string> { command };
        for (int i = 0; i < defaults.Length; i += 2)
            if (!given.Contains(defaults[i])) args.AddRange([defaults[i], defaults[i + 1]]);
        args.AddRange(overrides);
        return args.ToArray();
    }

    static string[] Train(string run, params string[] overrides) => Args("train",
        ["--dtype", "float32", "--threads", "1", "--data", "shapes:count=16", "--preset", "S/4", "--hidden-size", "32", "--depth", "2",
         "--num-heads", "2", "--steps", "1", "--batch-size", "4", "--lr", "1e-3", "--sample-steps", "1", "--out", run], overrides);

    static void AssertRefused(CliResult r, params string[] changes)
    {
        Assert.True(r.ExitCode == 1, r.ToString());
        var line = Assert.Single(r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("error: the run in '", line);
        foreach (var c in changes) Assert.Contains(c, line);
        Assert.Contains("add --allow-changed-settings to go on with the new ones", line);
    }

    [Fact]
    public void Train_ResumeWithChangedOptions_NamesThemAsFlags_AndAllowChangedSettingsGoesOn()
    {
        string run = Path.Combine(_dir, "cli");
        var first = CliTestHost.Run(Train(run));
        Assert.True(first.ExitCode == 0, first.ToString());

        AssertRefused(CliTestHost.Run(Train(run, "--data", "shapes:count=32", "--steps", "2", "--lr", "2e-3", "--batch-size", "8", "--depth", "3")),
            "--lr 0.001 → 0.002", "--batch-size 4 → 8", "--data count 16 → 32", "depth 2 → 3");
        // A larger --steps and another --sample-steps are no change of the run.
        var longer = CliTestHost.Run(Train(run, "--steps", "2", "--sample-steps", "2", "--log-every", "5"));
        Assert.True(longer.ExitCode == 0, longer.ToString());
        Assert.Contains("resuming", longer.Stdout);
        Assert.DoesNotContain("changed settings", longer.Stdout);

        var allowed = CliTestHost.Run(Train(run, "--steps", "3", "--lr", "2e-3", "--allow-changed-settings"));
        Assert.True(allowed.ExitCode == 0, allowed.ToString());
        Assert.Contains("note: --allow-changed-settings: the run goes on with changed settings: --lr 0.001 → 0.002", allowed.Stdout);
    }

    [Fact]
    public void TrainAutoencoder_ResumeWithChangedOptions_NamesThemAsFlags_AndAllowChangedSettingsGoesOn()
    {
        string run = Path.Combine(_dir, "cli-ae"), config = Path.Combine(_dir, "tiny-ae.json");
        File.WriteAllText(config, TinyAutoencoder.ToJson().ToJsonString());
        string[] Ae(params string[] overrides) => Args("train-autoencoder",
            ["--threads", "1", "--data", "shapes:count=16", "--config", config, "--steps", "1", "--batch-size", "4", "--sample-every", "0", "--out", run],
            overrides);
        var first = CliTestHost.Run(Ae());
        Assert.True(first.ExitCode == 0, first.ToString());

        AssertRefused(CliTestHost.Run(Ae("--data", "shapes:count=8", "--steps", "2", "--kl-weight", "0.001", "--flip")),
            "--kl-weight 1E-06 → 0.001", "--data count 16 → 8", "--flip false → true");
        var allowed = CliTestHost.Run(Ae("--steps", "2", "--kl-weight", "0.001", "--allow-changed-settings"));
        Assert.True(allowed.ExitCode == 0, allowed.ToString());
        Assert.Contains("note: --allow-changed-settings: the run goes on with changed settings: --kl-weight 1E-06 → 0.001", allowed.Stdout);
    }
}
