using System.Diagnostics;
using LatentDiffusion.Data;
using LatentDiffusion.Evaluation;
using LatentDiffusion.IO;
using LatentDiffusion.Tests.Fixtures;
using Xunit;

namespace LatentDiffusion.Tests;

/// <summary>
/// The programs of examples/ (docs/api.md), built with the solution, run as a user would run them: from the repository
/// root, as separate processes, each with small arguments; each must exit 0 and write what it says.
/// </summary>
public class ExampleProgramTests : IDisposable
{
    readonly string _dir = RepoPaths.NewTempDir("examples");

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    /// <summary>Runs examples/<paramref name="name"/> with <paramref name="args"/>; returns its standard output.</summary>
    static string Run(string name, params string[] args)
    {
        string dll = Path.Combine(RepoPaths.Root, "artifacts", "bin", name, "release", name + ".dll");
        Assert.True(File.Exists(dll), $"{dll} is missing; the solution build compiles the examples (./scripts/setup.sh)");
        var start = new ProcessStartInfo("dotnet") { WorkingDirectory = RepoPaths.Root, RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(dll);
        foreach (var a in args) start.ArgumentList.Add(a);
        // One libtorch thread per example: the test suite runs several things at once on small machines.
        start.Environment["OMP_NUM_THREADS"] = "1";
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        Assert.True(process.WaitForExit(TimeSpan.FromMinutes(5)), $"{name} did not finish in 5 minutes");
        Assert.True(process.ExitCode == 0, $"{name} exited {process.ExitCode}\n--- stdout ---\n{stdout.Result}\n--- stderr ---\n{stderr.Result}");
        return stdout.Result;
    }

    [Fact]
    public void GenerateClassesWritesAGridOfEveryClass()
    {
        string grid = Path.Combine(_dir, "classes.png");
        string output = Run("GenerateClasses", "models/shapes-class.safetensors", grid);
        Assert.Contains("12 images", output);
        using var image = ImageFile.Read(grid, 3);
        Assert.True(image.shape[1] > 3 * 32 && image.shape[2] >= 4 * 32, $"grid of [{string.Join(", ", image.shape)}]");
    }

    [Fact]
    public void GenerateFromPromptsWritesPngsAndAGrid()
    {
        string folder = Path.Combine(_dir, "prompts");
        string output = Run("GenerateFromPrompts", "models/shapes-text.safetensors", folder);
        Assert.Contains("8 PNGs", output);
        Assert.Equal(9, Directory.GetFiles(folder, "*.png").Length);
    }

    [Fact]
    public void TrainInCodeTrainsSamplesAndSavesALoadableModel()
    {
        string grid = Path.Combine(_dir, "trained.png"), model = Path.Combine(_dir, "trained.safetensors");
        string output = Run("TrainInCode", "20", grid, model);
        Assert.Contains("step 20: loss", output);
        Assert.True(File.Exists(grid));
        using var pipe = Pipelines.DiffusionPipeline.Load(model);
        Assert.Equal(ShapesDataset.ClassNames, pipe.ClassNames);
    }

    [Fact]
    public void ClassifierFidMeasuresTwoImageFolders()
    {
        string a = Path.Combine(_dir, "a"), b = Path.Combine(_dir, "b");
        foreach (var (folder, seed) in new[] { (a, 1), (b, 2) })
        {
            using var data = ShapesDataset.Generate(24, seed, text: false);
            for (int i = 0; i < data.Count; i++)
            {
                string classDir = Path.Combine(folder, data.ClassNames[(int)data.Labels[i].item<long>()].Replace(' ', '_'));
                Directory.CreateDirectory(classDir);
                using var bytes = data.Images[i];
                using var img = bytes.to(TorchSharp.torch.ScalarType.Float32) / 127.5 - 1;   // written back to the same bytes
                ImageFile.Write(Path.Combine(classDir, $"{i}.png"), img);
            }
        }
        // A random (untrained) classifier is a fixed feature map: enough to run the program.
        string clf = Path.Combine(_dir, "clf.safetensors");
        var config = new DomainClassifierConfig { Channels = 3, ImageSize = 32, ClassNames = ShapesDataset.ClassNames.ToArray(), Widths = [8, 16, 16], FeatureDim = 16 };
        using (var classifier = DomainClassifierTrainer.Create(config, seed: 1)) classifier.Save(clf);
        string output = Run("ClassifierFid", a, b, clf);
        var fid = output.Split('\n').Single(l => l.StartsWith("fid: ", StringComparison.Ordinal));
        Assert.True(double.Parse(fid["fid: ".Length..], System.Globalization.CultureInfo.InvariantCulture) >= 0, output);
    }

    [Fact]
    public void ConvertDiTConvertsAnOfficialCheckpointAndSamplesIt()
    {
        using var fixture = FixtureCatalog.Current.Open("dit", f => f.CaseWithOp("forward", "x", "t", "y") != null, "a forward(x, t, y) case");
        var (pt, config) = FixtureDiTCheckpoint.Write(fixture, _dir);
        string output = Run("ConvertDiT", pt, Path.Combine(_dir, "dit.safetensors"), "--heads", config.NumHeads.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Contains($"hidden size {config.HiddenSize}, depth {config.Depth}", output);
        Assert.Contains(config.InChannels == 4 ? "latents of shape" : "images ->", output);
    }
}
