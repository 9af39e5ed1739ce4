using LatentDiffusion.Data;
using LatentDiffusion.Denoisers;
using LatentDiffusion.Diffusion;
using LatentDiffusion.IO;
using LatentDiffusion.Pipelines;
using LatentDiffusion.Training;
using Xunit;

namespace LatentDiffusion.Tests;

/// <summary>
/// Denoiser files carry their backbone's <see cref="ModelCost"/> as metadata (<c>ldm.cost.*</c>), refreshed on every
/// save; files written before (without those entries) load and sample as before.
/// </summary>
public class CheckpointCostTests : IDisposable
{
    readonly string _dir = RepoPaths.NewTempDir("cost");
    public void Dispose() { try { Directory.Delete(_dir, true); } catch (IOException) { } }

    static IReadOnlyDictionary<string, string> MetadataOf(string path)
    {
        using var file = SafetensorsFile.Open(path);
        return file.Metadata.ToDictionary(kv => kv.Key, kv => kv.Value);
    }

    /// <summary>A copy of <paramref name="path"/> with its metadata changed by <paramref name="edit"/>, every tensor kept.</summary>
    string WithMetadata(string path, Action<Dictionary<string, string>> edit)
    {
        using var file = SafetensorsFile.Open(path);
        var meta = file.Metadata.ToDictionary(kv => kv.Key, kv => kv.Value);
        edit(meta);
        string output = Path.Combine(_dir, $"edited-{Guid.NewGuid():N}.safetensors");
        var tensors = file.ReadAll();
        SafetensorsWriter.Write(output, tensors, meta);
        foreach (var t in tensors.Values) t.Dispose();
        return output;
    }

    [Fact]
    public void SavedFile_HoldsTheCostOfItsBackbone()
    {
        string path = TinyModels.SaveCheckpoint(_dir);
        var meta = MetadataOf(path);
        var expected = ModelCost.Of(TinyModels.Config());
        Assert.Equal(new ModelCost(expected.Parameters, expected.ForwardFlops), ModelCost.FromMetadata(meta));
        var (model, _) = DenoiserCheckpoint.Load(path);
        using (model) Assert.Equal(model.parameters().Sum(p => p.numel()).ToString(System.Globalization.CultureInfo.InvariantCulture), meta[ModelCost.ParametersKey]);
    }

    [Fact]
    public void FileWithoutCost_LoadsAndSamples_AndARewriteAddsIt()
    {
        string old = WithMetadata(TinyModels.SaveCheckpoint(_dir), m => { m.Remove(ModelCost.ParametersKey); m.Remove(ModelCost.ForwardFlopsKey); });
        Assert.Null(ModelCost.FromMetadata(MetadataOf(old)));
        Assert.Equal(TinyModels.Config(), DenoiserCheckpoint.PeekInfo(old).Backbone);
        using (var pipe = DiffusionPipeline.Load(old))
        using (var images = pipe.Generate([0, 1], new SamplingOptions { Steps = 2, Seed = 1 }))
            Assert.Equal(2, images.Count);
        string rewritten = Path.Combine(_dir, "rewritten.safetensors");
        DenoiserCheckpoint.Rewrite(old, rewritten, info => info);
        Assert.Equal(ModelCost.Of(TinyModels.Config()).ForwardFlops, ModelCost.FromMetadata(MetadataOf(rewritten))!.ForwardFlops);
    }

    [Fact]
    public void StaleCost_IsRecomputedOnRewrite()
    {
        string stale = WithMetadata(TinyModels.SaveCheckpoint(_dir), m => m[ModelCost.ForwardFlopsKey] = "1");
        string rewritten = Path.Combine(_dir, "fresh.safetensors");
        DenoiserCheckpoint.Rewrite(stale, rewritten, info => info);
        Assert.Equal(ModelCost.Of(TinyModels.Config()).ForwardFlops, ModelCost.FromMetadata(MetadataOf(rewritten))!.ForwardFlops);
    }

    [Fact]
    public void TrainingRun_WritesTheCostIntoItsModelAndCheckpoint()
    {
        var info = TinyModels.Info(TinyModels.Config(size: 32));
        string run = Path.Combine(_dir, "run");
        using (var trainer = new DiffusionTrainer(info, new PixelTrainingData(ShapesDataset.Generate(8, 5, text: false)),
            new DiffusionTrainingOptions { Steps = 1, BatchSize = 4, LogEvery = 1 }, run))
            trainer.Run();
        var expected = ModelCost.Of(info.Backbone);
        foreach (var file in new[] { DiffusionTrainer.ModelFile, DiffusionTrainer.CheckpointFile })
            Assert.Equal(new ModelCost(expected.Parameters, expected.ForwardFlops), ModelCost.FromMetadata(MetadataOf(Path.Combine(run, file))));
    }
}
