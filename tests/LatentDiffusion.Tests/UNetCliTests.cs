using LatentDiffusion.Denoisers;
using LatentDiffusion.Diffusion;
using LatentDiffusion.Evaluation;
using LatentDiffusion.IO;
using LatentDiffusion.Training;
using LatentDiffusion.UNets;

namespace LatentDiffusion.Tests;

/// <summary>
/// A UNet trained by `ldm train --backbone unet` through every command, as the Transformer goes: train, resume, sample,
/// export (its sampling settings then used by sample, check-shapes and evaluate), check-shapes, evaluate with a classifier
/// made by `ldm train-classifier`; a text UNet sampled from prompts; a latent UNet on a cache made by `ldm encode` with the
/// shipped shapes autoencoder. Tiny models of 2 steps, with 2-step training grids (<c>--sample-steps 2</c>), so the file
/// runs in seconds; what the models draw is not judged, only that every command runs on them and writes what it says.
/// </summary>
[Collection(ConsoleCollection.Name)]
public sealed class UNetCliTests : IClassFixture<UNetCliTests.ClassRun>, IDisposable
{
    /// <summary>The tiny UNet of every test: two levels of 32 and 64 channels, attention at 1/2 and in the middle.</summary>
    static readonly string[] TinyUNet =
    [
        "--backbone", "unet", "--model-channels", "32", "--channel-mult", "1,2", "--num-res-blocks", "1", "--attention-resolutions", "2",
        "--no-learn-sigma", "--batch-size", "4", "--log-every", "1", "--sample-steps", "2",
    ];

    /// <summary>A class UNet on 32 pixel-space shapes, trained 2 steps by `ldm train` once for the tests of this class, which only read it.</summary>
    public sealed class ClassRun : IDisposable
    {
        /// <summary>The folder of this fixture (the run is in <see cref="RunDir"/>).</summary>
        public string Dir { get; } = RepoPaths.NewTempDir("unet-cli-class");
        /// <summary>The run folder.</summary>
        public string RunDir => Path.Combine(Dir, "run");
        /// <summary>The run's model file.</summary>
        public string Model => Path.Combine(RunDir, DiffusionTrainer.ModelFile);
        /// <summary>What `ldm train` printed and returned.</summary>
        public CliResult Train { get; }

        public ClassRun() =>
            Train = CliTestHost.Run(["train", "--data", "shapes:count=32", "--out", RunDir, "--steps", "2", .. TinyUNet]);

        public void Dispose()
        {
            try { Directory.Delete(Dir, true); } catch (IOException) { }
        }
    }

    readonly ClassRun _run;
    readonly string _dir = RepoPaths.NewTempDir("unet-cli");

    public UNetCliTests(ClassRun run)
    {
        _run = run;
        Assert.True(run.Train.ExitCode == 0, run.Train.ToString());
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    /// <summary>The steps logged in a run's metrics.jsonl, in file order.</summary>
    static List<long> LoggedSteps(string runDir) =>
        File.ReadLines(Path.Combine(runDir, DiffusionTrainer.MetricsFile)).Where(l => l.Trim().Length > 0)
            .Select(l => System.Text.Json.Nodes.JsonNode.Parse(l)!["step"]!.GetValue<long>()).ToList();

    /// <summary>Asserts a failed run: exit code 1 and one stderr line <c>error: ...</c> holding <paramref name="keyword"/>.</summary>
    static void FailsWithOneLine(CliResult r, string keyword)
    {
        Assert.True(r.ExitCode == 1, r.ToString());
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.True(lines.Length == 1, $"stderr must be one line\n{r}");
        Assert.StartsWith("error: ", lines[0]);
        Assert.Contains(keyword, lines[0], StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>The class ids written into the PNG names of ldm sample (<c>00000_003_...png</c>), in file order.</summary>
    static List<int> SampledClasses(string folder) =>
        Directory.GetFiles(folder, "0*.png").Order().Select(f => int.Parse(Path.GetFileName(f).Split('_')[1])).ToList();

    [Fact]
    public void TrainWritesAUNetModelItsMetricsAndACheapGrid()
    {
        var info = DenoiserCheckpoint.PeekInfo(_run.Model);
        var unet = Assert.IsType<UNetConfig>(info.Backbone);
        Assert.Equal((32, 2, 1), (unet.ModelChannels, unet.ChannelMult.Length, unet.NumResBlocks));
        Assert.Equal(new[] { 2 }, unet.AttentionResolutions);
        Assert.Equal((32, 3, 12, false), (unet.InputSize, unet.InChannels, unet.NumClasses, unet.LearnSigma));
        Assert.Equal(DataSpace.Pixel, info.Space);
        Assert.Equal(ConditionKind.Class, info.Condition);
        Assert.Equal(Data.ShapesDataset.ClassNames, info.ClassNames);
        Assert.Contains("model: unet, 2 levels of 32/64 channels", _run.Train.Stdout);
        Assert.Equal(new long[] { 1, 2 }, LoggedSteps(_run.RunDir));
        Assert.True(File.Exists(Path.Combine(_run.RunDir, DiffusionTrainer.CheckpointFile)));
        Assert.True(File.Exists(Path.Combine(_run.RunDir, "loss.png")));
        // The end-of-training grid, sampled with --sample-steps 2 (and guidance 4, as the model has a null class).
        string grid = Path.Combine(_run.RunDir, "samples_0000002.png");
        Assert.True(File.Exists(grid), _run.Train.ToString());
        Assert.Contains($"sample grid: {grid} (ddim, 2 steps, guidance 4)", _run.Train.Stdout);
    }

    [Fact]
    public void ALargerStepsResumesTheRunAndTheMetricsLogContinues()
    {
        // A copy of the 2-step run, so the other tests keep theirs.
        string run = Path.Combine(_dir, "run");
        Directory.CreateDirectory(run);
        foreach (var f in Directory.GetFiles(_run.RunDir)) File.Copy(f, Path.Combine(run, Path.GetFileName(f)));
        var firstLines = File.ReadLines(Path.Combine(run, DiffusionTrainer.MetricsFile)).ToList();
        string[] train = ["train", "--data", "shapes:count=32", "--out", run, .. TinyUNet];

        var finished = CliTestHost.Run([.. train, "--steps", "2"]);
        Assert.True(finished.ExitCode == 0, finished.ToString());
        Assert.Contains("is already finished at step 2", finished.Stdout);

        var resumed = CliTestHost.Run([.. train, "--steps", "4"]);
        Assert.True(resumed.ExitCode == 0, resumed.ToString());
        Assert.Contains($"resuming {run} at step 2", resumed.Stdout);
        Assert.Equal(new long[] { 1, 2, 3, 4 }, LoggedSteps(run));
        // The log continues: the lines of the first two steps are kept as they were.
        Assert.Equal(firstLines, File.ReadLines(Path.Combine(run, DiffusionTrainer.MetricsFile)).Take(2).ToList());
        Assert.True(File.Exists(Path.Combine(run, "samples_0000004.png")));
        Assert.Contains("sample grid:", resumed.Stdout);
        Assert.NotEqual(File.ReadAllBytes(_run.Model), File.ReadAllBytes(Path.Combine(run, DiffusionTrainer.ModelFile)));

        var again = CliTestHost.Run([.. train, "--steps", "4"]);
        Assert.Contains("is already finished at step 4", again.Stdout);

        // Another UNet size on the same folder is refused, and the checkpoint is left alone.
        var checkpoint = File.ReadAllBytes(Path.Combine(run, DiffusionTrainer.CheckpointFile));
        string[] wider = [.. train, "--steps", "6"];
        wider[Array.IndexOf(wider, "--model-channels") + 1] = "64";
        FailsWithOneLine(CliTestHost.Run(wider), "model_channels");
        Assert.Equal(checkpoint, File.ReadAllBytes(Path.Combine(run, DiffusionTrainer.CheckpointFile)));
    }

    [Fact]
    public void SampleWritesPngsOfTheAskedClasses()
    {
        string samples = Path.Combine(_dir, "samples");
        var r = CliTestHost.Run("sample", "--model", _run.Model, "--classes", "0,5", "--num", "4", "--steps", "3", "--out", samples);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("4 samples in", r.Stdout);
        Assert.Contains("(ddim, 3 steps, guidance 4)", r.Stdout);
        Assert.Equal(new[] { 0, 0, 5, 5 }, SampledClasses(samples));
        var png = ImageFile.ReadPixels(Directory.GetFiles(samples, "00000_*.png").Single(), 3);
        Assert.Equal((32, 32), (png.Width, png.Height));
        Assert.True(File.Exists(Path.Combine(samples, "grid.png")));

        FailsWithOneLine(CliTestHost.Run("sample", "--model", _run.Model, "--prompt", "a red circle", "--steps", "2", "--out", Path.Combine(_dir, "s2")), "--classes");
        FailsWithOneLine(CliTestHost.Run("sample", "--model", _run.Model, "--classes", "12", "--steps", "2", "--out", Path.Combine(_dir, "s3")), "0..11");
    }

    [Fact]
    public void ExportedSamplingSettingsAreUsedBySampleCheckShapesAndEvaluate()
    {
        string exported = Path.Combine(_dir, "models", "tiny-unet.safetensors");
        var export = CliTestHost.Run("export", "--model", _run.Model, "--out", exported, "--guidance", "1.5", "--sampler", "dpm++2m", "--steps", "3");
        Assert.True(export.ExitCode == 0, export.ToString());
        Assert.Contains("sampling dpm++2m, 3 steps, guidance 1.5", export.Stdout);
        var info = DenoiserCheckpoint.PeekInfo(exported);
        Assert.IsType<UNetConfig>(info.Backbone);
        Assert.Equal((SamplerKind.DpmSolverPP2M, 3, 1.5), (info.Sampling!.Sampler, info.Sampling.Steps, info.Sampling.GuidanceScale));
        Assert.Null(info.Autoencoder);

        // ldm sample without sampling options draws with the exported ones: the same images as the run's model given them.
        string fromExport = Path.Combine(_dir, "from-export"), fromRun = Path.Combine(_dir, "from-run");
        var s1 = CliTestHost.Run("sample", "--model", exported, "--classes", "1,7", "--num", "2", "--out", fromExport);
        Assert.True(s1.ExitCode == 0, s1.ToString());
        Assert.Contains("(dpm++2m, 3 steps, guidance 1.5)", s1.Stdout);
        var s2 = CliTestHost.Run("sample", "--model", _run.Model, "--classes", "1,7", "--num", "2", "--sampler", "dpm++2m", "--steps", "3", "--guidance", "1.5",
            "--out", fromRun);
        Assert.True(s2.ExitCode == 0, s2.ToString());
        var names = Directory.GetFiles(fromRun, "0*.png").Select(Path.GetFileName).Order().ToList();
        Assert.Equal(2, names.Count);
        Assert.Equal(names, Directory.GetFiles(fromExport, "0*.png").Select(Path.GetFileName).Order().ToList());
        foreach (var name in names)
            Assert.Equal(File.ReadAllBytes(Path.Combine(fromRun, name!)), File.ReadAllBytes(Path.Combine(fromExport, name!)));

        // check-shapes: one sample per class with the exported settings, read back by the pixel checker.
        string checkJson = Path.Combine(_dir, "check.json");
        var check = CliTestHost.Run("check-shapes", "--model", exported, "--num", "12", "--out", checkJson);
        Assert.True(check.ExitCode == 0, check.ToString());
        Assert.Contains("dpm++2m 3 steps, guidance 1.5", check.Stdout);
        var result = System.Text.Json.JsonSerializer.Deserialize<ShapesEvaluationResult>(File.ReadAllText(checkJson))!;
        Assert.Equal(("class", 12), (result.Condition, result.Images));
        Assert.Equal(12, result.PerGroup.Count);
        Assert.InRange(result.Accuracy, 0, 1);

        // evaluate: classifier features (a classifier made by ldm train-classifier) against shapes of another seed.
        string clf = Path.Combine(_dir, "clf.safetensors");
        var trainClf = CliTestHost.Run("train-classifier", "--data", "shapes:count=32", "--epochs", "1", "--batch-size", "16", "--out", clf);
        Assert.True(trainClf.ExitCode == 0, trainClf.ToString());
        string report = Path.Combine(_dir, "report.json");
        var evaluate = CliTestHost.Run("evaluate", "--model", exported, "--num", "8", "--batch-size", "8", "--features", $"classifier:{clf}",
            "--reference", "shapes:count=16,seed=3", "--no-precision-recall", "--out", report);
        Assert.True(evaluate.ExitCode == 0, evaluate.ToString());
        var e = EvaluationReport.Load(report);
        Assert.Equal((8L, 16L), (e.SampleCount, e.ReferenceCount));
        Assert.Equal((exported, "dpm++2m", 3, 1.5), (e.Model, e.Sampler, e.Steps, e.Guidance));
        Assert.True(double.IsFinite(e.Metrics["fid"]) && e.Metrics["fid"] >= 0, string.Join(", ", e.Metrics));
        Assert.InRange(e.Metrics["sample_accuracy"], 0, 1);
        Assert.InRange(e.Metrics["reference_accuracy"], 0, 1);
    }

    [Fact]
    public void TextUNetTrainsAndSamplesPrompts()
    {
        string run = Path.Combine(_dir, "text");
        var train = CliTestHost.Run(["train", "--data", "shapes-text:count=32", "--condition", "text", "--out", run, "--steps", "2", .. TinyUNet]);
        Assert.True(train.ExitCode == 0, train.ToString());
        string model = Path.Combine(run, DiffusionTrainer.ModelFile);
        var info = DenoiserCheckpoint.PeekInfo(model);
        var unet = Assert.IsType<UNetConfig>(info.Backbone);
        Assert.Equal(ConditionKind.Text, info.Condition);
        Assert.True(unet.UseSpatialTransformer);
        Assert.Equal(32, unet.ContextDim);
        Assert.Equal(new long[] { 1, 2 }, LoggedSteps(run));
        Assert.Contains("cross-attention at 1/2 and the middle", train.Stdout);
        Assert.True(File.Exists(Path.Combine(run, "samples_0000002.png")), train.ToString());

        // Two captions of the training data (--seed 0 draws the same 32 scenes).
        using var data = Data.ShapesDataset.Generate(32, 0, text: true);
        string[] prompts = [data.Captions[0]!, data.Captions[1]!];
        string samples = Path.Combine(_dir, "text-samples");
        var sample = CliTestHost.Run("sample", "--model", model, "--prompt", prompts[0], "--prompt", prompts[1], "--num", "2", "--steps", "2", "--out", samples);
        Assert.True(sample.ExitCode == 0, sample.ToString());
        Assert.Equal(2, Directory.GetFiles(samples, "0*.png").Length);
        Assert.Equal(prompts, File.ReadAllLines(Path.Combine(samples, "prompts.txt")));
        Assert.True(File.Exists(Path.Combine(samples, "grid.png")));

        FailsWithOneLine(CliTestHost.Run("sample", "--model", model, "--prompt", "a purple hexagon", "--steps", "2", "--out", Path.Combine(_dir, "t2")), "purple");
        FailsWithOneLine(CliTestHost.Run("sample", "--model", model, "--classes", "1", "--steps", "2", "--out", Path.Combine(_dir, "t3")), "--prompt");
    }

    [Fact]
    public void LatentUNetTrainsOnAnEncodedCacheAndSamplesDecodedPngs()
    {
        string cache = Path.Combine(_dir, "cache"), run = Path.Combine(_dir, "latent");
        string autoencoder = Path.Combine(RepoPaths.Root, "models", "shapes-autoencoder.safetensors");
        var encode = CliTestHost.Run("encode", "--autoencoder", autoencoder, "--data", "shapes:count=32", "--out", cache);
        Assert.True(encode.ExitCode == 0, encode.ToString());

        var train = CliTestHost.Run(["train", "--data", cache, "--out", run, "--steps", "2", .. TinyUNet]);
        Assert.True(train.ExitCode == 0, train.ToString());
        string model = Path.Combine(run, DiffusionTrainer.ModelFile);
        var info = DenoiserCheckpoint.PeekInfo(model);
        var unet = Assert.IsType<UNetConfig>(info.Backbone);
        Assert.Equal(DataSpace.Latent, info.Space);
        Assert.Equal((8, 4, 12), (unet.InputSize, unet.InChannels, unet.NumClasses));
        Assert.Equal("shapes-autoencoder.safetensors", info.Autoencoder);
        Assert.True(File.Exists(Path.Combine(run, "shapes-autoencoder.safetensors")), "the autoencoder is copied beside the model");
        Assert.True(File.Exists(Path.Combine(run, "samples_0000002.png")), train.ToString());

        // The model names the autoencoder beside it: sample decodes to 32x32 PNGs with no --autoencoder.
        string samples = Path.Combine(_dir, "latent-samples");
        var sample = CliTestHost.Run("sample", "--model", model, "--classes", "3", "--num", "2", "--steps", "2", "--out", samples);
        Assert.True(sample.ExitCode == 0, sample.ToString());
        Assert.Contains("decoded by the autoencoder", sample.Stdout);
        Assert.Equal(new[] { 3, 3 }, SampledClasses(samples));
        var png = ImageFile.ReadPixels(Directory.GetFiles(samples, "00000_*.png").Single(), 3);
        Assert.Equal((32, 32), (png.Width, png.Height));
    }
}
