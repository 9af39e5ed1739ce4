using System.Text.Json.Nodes;
using LatentDiffusion.Denoisers;
using LatentDiffusion.Diffusion;
using LatentDiffusion.IO;
using LatentDiffusion.Pipelines;
using LatentDiffusion.Transformers;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests;

/// <summary>The DiffusionPipeline's public contract and the strictness of the model description it reads.</summary>
[Collection(ConsoleCollection.Name)]
public class PipelineTests : IDisposable
{
    readonly string _dir = RepoPaths.NewTempDir("pipeline");

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    [Fact]
    public void ShippedClassModelToPngsInThreeStatements()
    {
        using var _ = new SingleTorchThread();
        string grid = Path.Combine(_dir, "grid.png");

        using var pipe = DiffusionPipeline.Load(Path.Combine(RepoPaths.Root, "models", "shapes-class.safetensors"));
        using var images = pipe.Generate([0, 4, 8], pipe.DefaultOptions with { Steps = 10 });
        images.SaveGrid(grid);

        Assert.True(new FileInfo(grid).Length > 0);
        Assert.Equal(new long[] { 3, 3, 32, 32 }, images.Images.shape);
        Assert.Equal(["red circle", "red square", "red triangle"], Enumerable.Range(0, 3).Select(images.Caption));
        Assert.Equal(12, pipe.NumClasses);
        Assert.Equal((32, 3), (pipe.ImageSize, pipe.ImageChannels));
        Assert.Equal(1.0, pipe.DefaultOptions.GuidanceScale);
        Assert.NotNull(pipe.Autoencoder);
    }

    [Fact]
    public void LdmSampleOnTheShippedClassModelUsesGuidanceOneByDefault()
    {
        var r = CliTestHost.Run("sample", "--model", Path.Combine(RepoPaths.Root, "models", "shapes-class.safetensors"),
            "--classes", "0", "--num", "1", "--steps", "2", "--out", Path.Combine(_dir, "shipped"));
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("ddim, 2 steps, guidance 1)", r.Stdout);
    }

    [Fact]
    public void SameSeedSameImages_BatchesEqualTheWholeCall_ProgressCoversEveryStep()
    {
        string path = TinyModels.SaveCheckpoint(_dir);
        using var pipe = DiffusionPipeline.Load(path);
        var options = new SamplingOptions { Steps = 4, Seed = 3, BatchSize = 2, GuidanceScale = 2.0 };
        var progress = new List<GenerationProgress>();
        using var a = pipe.Generate([0, 1, 2, 3, 4], options, progress.Add);
        using var b = pipe.Generate([0, 1, 2, 3, 4], options);
        Assert.True(a.Images.equal(b.Images).all().item<bool>());
        Assert.Equal(3 * 4, progress.Count);
        Assert.Equal(1.0, progress[^1].Fraction, 9);
        Assert.True(progress.Zip(progress.Skip(1)).All(p => p.Second.Fraction > p.First.Fraction));

        var parts = pipe.GenerateBatches([0, 1, 2, 3, 4], options).ToList();
        Assert.Equal([2, 2, 1], parts.Select(p => p.Count));
        Assert.Equal([4], parts[2].ClassIds!);
        using var joined = torch.cat(parts.Select(p => p.Images).ToList(), 0);
        Assert.True(joined.equal(a.Images).all().item<bool>());
        foreach (var p in parts) p.Dispose();

        using var other = pipe.Generate([0, 1, 2, 3, 4], options with { Seed = 4 });
        Assert.False(other.Images.equal(a.Images).all().item<bool>());
    }

    [Fact]
    public void CancellationStopsBetweenSteps()
    {
        using var pipe = DiffusionPipeline.Load(TinyModels.SaveCheckpoint(_dir));
        using var cancel = new CancellationTokenSource();
        int steps = 0;
        Assert.Throws<OperationCanceledException>(() => pipe.Generate([0, 1], new SamplingOptions { Steps = 20 }, p =>
        {
            if (++steps == 3) cancel.Cancel();
        }, cancel.Token));
        Assert.Equal(3, steps);
    }

    [Fact]
    public void SavesPngsNamedByIndexAndClass()
    {
        using var pipe = DiffusionPipeline.Load(TinyModels.SaveCheckpoint(_dir));
        using var images = pipe.Generate([11, 0], new SamplingOptions { Steps = 2 });
        var files = images.Save(Path.Combine(_dir, "pngs")).Select(Path.GetFileName).ToList();
        Assert.Equal(["00000_011_yellow-triangle.png", "00001_000_red-circle.png"], files);
        using var bytes = images.ToBytes();
        Assert.Equal(ScalarType.Byte, bytes.dtype);
    }

    [Fact]
    public void UnconditionalModelsGenerateFromACount()
    {
        var cfg = TinyModels.Config(numClasses: 0) with { ClassDropoutProb = 0.1 };
        using var model = TinyModels.RandomModel(cfg);
        using var pipe = DiffusionPipeline.FromModels(model, TinyModels.Info(cfg));
        Assert.True(pipe.CanGenerateUnconditionally);
        using var images = pipe.Generate(3, new SamplingOptions { Steps = 2 });
        Assert.Equal(3, images.Count);
        Assert.Equal("unconditional", images.Caption(0));
        var e = Assert.Throws<LdmException>(() => pipe.Generate([0], new SamplingOptions { Steps = 2 }));
        Assert.Contains("no classes", e.Message);
    }

    [Fact]
    public void BadSettingsAreErrorsInLibraryTerms()
    {
        using var pipe = DiffusionPipeline.Load(TinyModels.SaveCheckpoint(_dir));
        var e = Assert.Throws<LdmOptionException>(() => pipe.Generate([0], new SamplingOptions { Steps = 0 }));
        Assert.Equal("SamplingOptions.Steps must be at least 1, got 0; 50 to 250 is usual.", e.Message);
        var c = Assert.Throws<LdmException>(() => pipe.Generate([12], new SamplingOptions()));
        Assert.Contains("class id 12 is outside this model's classes 0..11", c.Message);
        Assert.Throws<LdmException>(() => pipe.Generate(["a red circle"], new SamplingOptions()));
        Assert.Throws<LdmOptionException>(() => DiffusionPipeline.Load(TinyModels.SaveCheckpoint(_dir), dtype: ScalarType.Int32));
    }

    /// <summary>Rewrites a checkpoint's metadata entry through <paramref name="change"/>, keeping every tensor.</summary>
    string WithMetadata(string path, string key, Func<string, string> change)
    {
        using var file = SafetensorsFile.Open(path);
        var meta = file.Metadata.ToDictionary(kv => kv.Key, kv => kv.Value);
        meta[key] = change(meta[key]);
        string output = Path.Combine(_dir, $"mutated-{Guid.NewGuid():N}.safetensors");
        var tensors = file.ReadAll();
        SafetensorsWriter.Write(output, tensors, meta);
        foreach (var t in tensors.Values) t.Dispose();
        return output;
    }

    [Theory]
    [InlineData("transformer", "hiden_size")]       // a misspelled backbone key
    [InlineData("diffusion", "predict_vv")]         // a misspelled diffusion key
    [InlineData(null, "guidence")]                  // an unknown top-level key
    public void UnknownOrMisspelledKeysAreErrorsNotDefaults(string? section, string key)
    {
        string path = TinyModels.SaveCheckpoint(_dir);
        string bad = WithMetadata(path, ModelCheckpoint.ConfigKey, json =>
        {
            var config = JsonNode.Parse(json)!.AsObject();
            var target = section is null ? config : config[section]!.AsObject();
            target[key] = 1;
            return config.ToJsonString();
        });
        var e = Assert.Throws<LdmException>(() => DenoiserCheckpoint.PeekInfo(bad));
        Assert.Contains(key, e.Message);
        Assert.Throws<LdmException>(() => DiffusionPipeline.Load(bad));
    }

    [Fact]
    public void ANewerFileFormatIsRefusedWithWhatToDo()
    {
        string bad = WithMetadata(TinyModels.SaveCheckpoint(_dir), ModelCheckpoint.FormatKey, _ => "ldm-checkpoint/2");
        var e = Assert.Throws<LdmException>(() => DenoiserCheckpoint.PeekInfo(bad));
        Assert.Contains("was made by a newer ldm (file format ldm-checkpoint/2; this one reads up to ldm-checkpoint/1); update ldm", e.Message);
    }

    [Fact]
    public void TheDescriptionRoundTripsWithItsRecommendedSampling()
    {
        var cfg = TinyModels.Config();
        var info = TinyModels.Info(cfg) with
        {
            Sampling = new RecommendedSampling { Sampler = SamplerKind.DpmSolverPP2M, Steps = 20, GuidanceScale = 1.5 },
            Autoencoder = "ae.safetensors",
        };
        var json = DenoiserCheckpoint.ToJson(info);
        Assert.Equal("dpm++2m", (string?)json["sampling"]!["sampler"]);
        Assert.Equal("pixel", (string?)json["space"]);
        var back = DenoiserCheckpoint.FromJson(json, "test");
        Assert.Equal(info.Sampling, back.Sampling);
        Assert.Equal(info.Backbone, back.Backbone);
        Assert.Equal(info.Diffusion, back.Diffusion);
        Assert.Equal((info.Space, info.Autoencoder), (back.Space, back.Autoencoder));
        Assert.Equal(info.ClassNames, back.ClassNames);
    }

    [Fact]
    public void LdmSampleUsesTheModelsRecommendedGuidanceAndExportSetsIt()
    {
        string path = TinyModels.SaveCheckpoint(_dir);
        var r = CliTestHost.Run("sample", "--model", path, "--out", Path.Combine(_dir, "a"), "--classes", "0", "--num", "1", "--steps", "2");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("guidance 4", r.Stdout);   // no stored recommendation: guidance 4 for a model with a null class

        string exported = Path.Combine(_dir, "exported.safetensors");
        r = CliTestHost.Run("export", "--model", path, "--out", exported, "--guidance", "1.5", "--sampler", "dpm++2m", "--steps", "7");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(new RecommendedSampling { Sampler = SamplerKind.DpmSolverPP2M, Steps = 7, GuidanceScale = 1.5 }, DenoiserCheckpoint.PeekInfo(exported).Sampling);
        r = CliTestHost.Run("sample", "--model", exported, "--out", Path.Combine(_dir, "b"), "--classes", "0", "--num", "1");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("dpm++2m, 7 steps, guidance 1.5", r.Stdout);
    }
}
