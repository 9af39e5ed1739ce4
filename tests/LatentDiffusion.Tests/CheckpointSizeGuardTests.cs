using System.Diagnostics;
using System.Text.Json.Nodes;
using LatentDiffusion.Denoisers;
using LatentDiffusion.IO;

namespace LatentDiffusion.Tests;

/// <summary>
/// A denoiser checkpoint whose config describes a far larger network than its weights (a damaged or edited config) is
/// refused before the network is built, quickly, instead of allocating gigabytes or looping over 2^31 blocks.
/// </summary>
public sealed class CheckpointSizeGuardTests : IDisposable
{
    readonly string _dir = RepoPaths.NewTempDir("checkpoint-size");

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    [Theory]
    [InlineData("depth", 2147483647L)]
    [InlineData("depth", 1048576L)]
    [InlineData("hidden_size", 1048576L)]
    [InlineData("num_classes", 1048576L)]
    public void AConfigLargerThanItsWeights_IsRefusedBeforeBuilding(string key, long value)
    {
        string original = TinyModels.SaveCheckpoint(_dir);
        string path = Path.Combine(_dir, "edited.safetensors");
        using (var file = SafetensorsFile.Open(original))
        using (var scope = TorchSharp.torch.NewDisposeScope())
        {
            var meta = file.Metadata.ToDictionary(kv => kv.Key, kv => kv.Value);
            var config = JsonNode.Parse(meta[ModelCheckpoint.ConfigKey])!.AsObject();
            config["transformer"]![key] = value;
            meta[ModelCheckpoint.ConfigKey] = config.ToJsonString();
            SafetensorsWriter.Write(path, file.ReadAll(), meta);
        }
        var clock = Stopwatch.StartNew();
        var e = Assert.Throws<LdmException>(() => DenoiserCheckpoint.Load(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("holds", e.Message);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed}");
    }
}
