using System.Diagnostics;
using System.Text.Json;
using LatentDiffusion.Evaluation;
using LatentDiffusion.IO;
using LatentDiffusion.Training;
using TorchSharp;
using Xunit;

namespace LatentDiffusion.Tests;

/// <summary>
/// The built <c>ldm</c> under MPICH's <c>mpiexec.mpich -n 2</c> (one libtorch thread per rank) against the same command
/// in one process: training with the same global batch, seed and steps gives the same loss curve and weights (and
/// resumes exactly), sharded sampling and evaluation give the same images and statistics. scripts/setup.sh installs
/// MPICH; without it these tests fail (they cannot pass without exercising MPI).
/// </summary>
[Collection(ConsoleCollection.Name)]
public sealed class MpiTests : IDisposable
{
    readonly string _dir = RepoPaths.NewTempDir("mpi");

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    static string Ldm
    {
        get
        {
            string path = Path.Combine(RepoPaths.Root, "artifacts", "bin", "LatentDiffusion.Cli", "release", "ldm");
            Assert.True(File.Exists(path), $"{path} is missing; build the solution in Release (./scripts/setup.sh)");
            return path;
        }
    }

    static string MpiExec
    {
        get
        {
            string? found = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':')
                .Select(d => Path.Combine(d, "mpiexec.mpich")).FirstOrDefault(File.Exists);
            Assert.True(found is not null, "mpiexec.mpich is missing; install MPICH (apt-get install mpich, as scripts/setup.sh does)");
            return found!;
        }
    }

    /// <summary>Runs ldm with <paramref name="args"/>, under mpiexec.mpich with <paramref name="ranks"/> ranks when more than 1.</summary>
    static CliResult Run(int ranks, params string[] args) => Run(ranks, new Dictionary<string, string>(), args);

    static CliResult Run(int ranks, Dictionary<string, string> environment, params string[] args)
    {
        var start = new ProcessStartInfo(ranks > 1 ? MpiExec : Ldm) { WorkingDirectory = RepoPaths.Root, RedirectStandardOutput = true, RedirectStandardError = true };
        if (ranks > 1)
        {
            foreach (var a in new[] { "-n", ranks.ToString(), Ldm }) start.ArgumentList.Add(a);
        }
        foreach (var a in args) start.ArgumentList.Add(a);
        start.Environment["OMP_NUM_THREADS"] = "1";
        foreach (var (name, value) in environment) start.Environment[name] = value;
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromSeconds(90)))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"ldm {string.Join(' ', args)} on {ranks} ranks did not finish in 90 s\n{stdout.Result}\n{stderr.Result}");
        }
        return new CliResult(process.ExitCode, stdout.Result, stderr.Result);
    }

    // float32: with --dtype auto a bf16 machine would compare bf16 products of half batches with those of whole ones.
    static string[] Train(string outDir, int steps) =>
        ["train", "--dtype", "float32", "--data", "shapes:count=64", "--preset", "S/4", "--hidden-size", "32", "--depth", "2", "--num-heads", "2",
         "--steps", steps.ToString(), "--batch-size", "8", "--lr", "1e-3", "--log-every", "4", "--threads", "1", "--sample-steps", "1", "--out", outDir];

    /// <summary>Every logged loss within 1e-4 relative and every weight of model.safetensors within 1e-5.</summary>
    static void AssertSameRun(string single, string ranks, int entries)
    {
        var expected = Losses(single);
        var actual = Losses(ranks);
        Assert.Equal(expected.Select(e => e.step), actual.Select(a => a.step));
        Assert.Equal(entries, expected.Count);
        foreach (var ((step, want), (_, got)) in expected.Zip(actual))
            Assert.True(Math.Abs(got - want) <= 1e-4 * Math.Abs(want), $"step {step}: loss {got} on 2 ranks, {want} in one process");

        using var a = SafetensorsFile.Open(Path.Combine(single, DiffusionTrainer.ModelFile));
        using var b = SafetensorsFile.Open(Path.Combine(ranks, DiffusionTrainer.ModelFile));
        using var scope = torch.NewDisposeScope();
        var wa = a.ReadAll();
        var wb = b.ReadAll();
        Assert.Equal(wa.Keys.Order(), wb.Keys.Order());
        foreach (var (name, w) in wa)
        {
            double diff = (w - wb[name]).abs().max().item<float>();
            Assert.True(diff <= 1e-5, $"{name} differs by {diff} between 2 ranks and one process");
        }
        Assert.Equal(a.Metadata["ldm.train.step"], b.Metadata["ldm.train.step"]);
    }

    static List<(long step, double loss)> Losses(string runDir) =>
        MetricsLog.Read(Path.Combine(runDir, DiffusionTrainer.MetricsFile)).Select(e => (e["step"].GetInt64(), e["loss"].GetDouble())).ToList();

    [Fact]
    public void TwoRanksTrainTheSameCurveAndWeightsAsOneProcessAndResumeExactly()
    {
        string single = Path.Combine(_dir, "single"), ranks = Path.Combine(_dir, "ranks");
        var one = Run(1, Train(single, 24));
        Assert.True(one.ExitCode == 0, one.ToString());
        // Two ranks, stopped half-way and resumed: the checkpoint is read by rank 0 and broadcast.
        var first = Run(2, Train(ranks, 12));
        Assert.True(first.ExitCode == 0, first.ToString());
        var second = Run(2, Train(ranks, 24));
        Assert.True(second.ExitCode == 0, second.ToString());
        Assert.Contains("resuming", second.Stdout);
        // Rank 0 prints, rank 1 stays quiet.
        Assert.Single(second.Stdout.Split('\n'), l => l.StartsWith("data parallel: 2 ranks, 4 examples each", StringComparison.Ordinal));

        AssertSameRun(single, ranks, entries: 6);
    }

    /// <summary>A text model: the caption dropout is drawn for the global batch and sliced like everything else.</summary>
    [Fact]
    public void TwoRanksTrainATextModelLikeOneProcess()
    {
        string single = Path.Combine(_dir, "text1"), ranks = Path.Combine(_dir, "text2");
        string[] Text(string dir) => [.. Train(dir, 12).Select(a => a == "shapes:count=64" ? "shapes-text:count=64" : a)];
        var one = Run(1, Text(single));
        Assert.True(one.ExitCode == 0, one.ToString());
        var two = Run(2, Text(ranks));
        Assert.True(two.ExitCode == 0, two.ToString());
        Assert.Contains("captions", two.Stdout);
        AssertSameRun(single, ranks, entries: 3);
    }

    /// <summary>Without mpiexec, MPI is never loaded (a missing MPI library goes unnoticed); under Open MPI's launcher
    /// ldm stops with one line saying to use MPICH.</summary>
    [Fact]
    public void OnlyAnMpichLaunchLoadsMpiAndOpenMpiIsRefusedInOneLine()
    {
        string ckpt = TinyModels.SaveCheckpoint(_dir);
        string[] sample = ["sample", "--model", ckpt, "--num", "2", "--steps", "2", "--threads", "1", "--out", Path.Combine(_dir, "plain")];
        var plain = Run(1, new() { [Distributed.MpiLaunch.LibraryEnvVar] = "/nonexistent/libmpich.so.12" }, sample);
        Assert.True(plain.ExitCode == 0, plain.ToString());
        Assert.Equal(3, Directory.GetFiles(Path.Combine(_dir, "plain"), "*.png").Length);

        var openMpi = Run(1, new() { ["OMPI_COMM_WORLD_SIZE"] = "2", ["OMPI_COMM_WORLD_RANK"] = "0" }, sample);
        Assert.Equal(1, openMpi.ExitCode);
        Assert.StartsWith("error: ", openMpi.Stderr);
        Assert.Contains("install mpich and launch with mpiexec.mpich", openMpi.Stderr);
        Assert.Single(openMpi.Stderr.Trim().Split('\n'));

        // A command that does not run across ranks says so instead of running twice into the same files.
        var encode = Run(2, "train-autoencoder", "--data", "shapes:count=8", "--out", Path.Combine(_dir, "ae"));
        Assert.NotEqual(0, encode.ExitCode);
        Assert.Contains("ldm train-autoencoder runs in one process; start it without mpiexec", encode.Stderr);
        Assert.False(File.Exists(Path.Combine(_dir, "ae", "checkpoint.safetensors")));
    }

    [Fact]
    public void ABatchThatDoesNotSplitAmongTheRanksIsOneLineNamingTheOption()
    {
        var args = Train(Path.Combine(_dir, "odd"), 4);
        args[Array.IndexOf(args, "--batch-size") + 1] = "7";
        var result = Run(2, args);
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("error: the batch size 7 (--batch-size) does not divide among 2 ranks", result.Stderr);
        Assert.DoesNotContain("   at ", result.Stderr);
    }

    [Fact]
    public void ShardedSamplingAndEvaluationEqualOneProcess()
    {
        string ckpt = TinyModels.SaveCheckpoint(_dir, size: 32);
        string clf = Path.Combine(_dir, "clf.safetensors");
        var config = new DomainClassifierConfig { Channels = 3, ImageSize = 32, ClassNames = Data.ShapesDataset.ClassNames.ToArray(), Widths = [8, 16, 16], FeatureDim = 16 };
        using (var classifier = DomainClassifierTrainer.Create(config, seed: 1)) classifier.Save(clf);

        // DDPM draws noise at every step, so rank 1 only matches when it replays rank 0's batches exactly.
        string[] Sample(string dir) => ["sample", "--model", ckpt, "--num", "10", "--batch-size", "4", "--sampler", "ddpm", "--steps", "3", "--seed", "5", "--threads", "1", "--out", dir];
        var one = Run(1, Sample(Path.Combine(_dir, "s1")));
        Assert.True(one.ExitCode == 0, one.ToString());
        var two = Run(2, Sample(Path.Combine(_dir, "s2")));
        Assert.True(two.ExitCode == 0, two.ToString());
        var files = Directory.GetFiles(Path.Combine(_dir, "s1"), "*.png").Select(Path.GetFileName).Order().ToList();
        Assert.Equal(11, files.Count);   // 10 images and the grid
        Assert.Equal(files, Directory.GetFiles(Path.Combine(_dir, "s2"), "*.png").Select(Path.GetFileName).Order().ToList());
        foreach (var f in files)
            Assert.True(File.ReadAllBytes(Path.Combine(_dir, "s1", f!)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(_dir, "s2", f!))), $"{f} differs");

        string[] Evaluate(string json, string npz, string samples) =>
            ["evaluate", samples == "model" ? "--model" : "--samples", samples == "model" ? ckpt : samples, "--num", "10", "--batch-size", "4",
             "--sampler", "ddpm", "--steps", "3", "--seed", "5", "--features", $"classifier:{clf}", "--reference", "shapes:count=18,seed=2",
             "--threads", "1", "--out", json, "--export-npz", npz];
        foreach (var samples in new[] { "model", "shapes:count=14,seed=7" })
        {
            string tag = samples == "model" ? "model" : "shapes";
            var single = Run(1, Evaluate(Path.Combine(_dir, $"{tag}1.json"), Path.Combine(_dir, $"{tag}1.npz"), samples));
            Assert.True(single.ExitCode == 0, single.ToString());
            var sharded = Run(2, Evaluate(Path.Combine(_dir, $"{tag}2.json"), Path.Combine(_dir, $"{tag}2.npz"), samples));
            Assert.True(sharded.ExitCode == 0, sharded.ToString());
            var expected = EvaluationReport.Load(Path.Combine(_dir, $"{tag}1.json"));
            var actual = EvaluationReport.Load(Path.Combine(_dir, $"{tag}2.json"));
            Assert.Equal(expected.SampleCount, actual.SampleCount);
            Assert.Equal(expected.ReferenceCount, actual.ReferenceCount);
            Assert.Equal(expected.Metrics.Keys, actual.Metrics.Keys);
            Assert.Contains("fid", expected.Metrics.Keys);
            Assert.Contains("precision", expected.Metrics.Keys);
            foreach (var (name, want) in expected.Metrics)
                Assert.True(Math.Abs(actual.Metrics[name] - want) <= 1e-5 * Math.Max(1, Math.Abs(want)), $"{tag} {name}: {actual.Metrics[name]} sharded, {want} in one process");
            using var scope = torch.NewDisposeScope();
            var imagesOne = Npz.Read(Path.Combine(_dir, $"{tag}1.npz"));
            var imagesTwo = Npz.Read(Path.Combine(_dir, $"{tag}2.npz"));
            Assert.Equal(imagesOne["arr_0"].shape, imagesTwo["arr_0"].shape);
            Assert.True(imagesOne["arr_0"].eq(imagesTwo["arr_0"]).all().item<bool>(), $"{tag}: the sharded samples differ from one process's");
        }
    }
}
