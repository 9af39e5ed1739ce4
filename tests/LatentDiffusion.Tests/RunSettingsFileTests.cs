using LatentDiffusion.IO;
using LatentDiffusion.Training;
using TorchSharp;

namespace LatentDiffusion.Tests;

/// <summary>The settings a run recorded, read back from its checkpoint for display; missing and damaged files told apart.</summary>
public class RunSettingsFileTests : IDisposable
{
    readonly string _dir = RepoPaths.NewTempDir("run-settings");

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    void WriteCheckpoint(string settingsJson)
    {
        using var x = torch.zeros(1);
        SafetensorsWriter.Write(Path.Combine(_dir, TrainingRun.CheckpointFile), new Dictionary<string, torch.Tensor> { ["x"] = x },
            new Dictionary<string, string> { [TrainingRun.SettingsKey] = settingsJson });
    }

    [Fact]
    public void RecordedSettingsReadBackAsText()
    {
        Assert.Empty(RunSettingsFile.Read(_dir));   // no checkpoint yet
        WriteCheckpoint(new RunSettings().Add(System.Text.Json.Nodes.JsonNode.Parse("""{"lr":0.001,"block":"in-context","size":{"depth":2}}""")).ToJson());

        var settings = RunSettingsFile.Read(_dir);
        Assert.Equal(["lr", "block", "size.depth"], settings.Keys);
        Assert.Equal(("0.001", "in-context", "2"), (settings["lr"], settings["block"], settings["size.depth"]));
    }

    [Fact]
    public void DamagedSettingsAreAnLdmException()
    {
        WriteCheckpoint("{not json");
        Assert.Contains("not valid JSON", Assert.Throws<LdmException>(() => RunSettingsFile.Read(_dir)).Message);
    }
}
