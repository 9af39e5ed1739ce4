using System.Text.Json;
using LatentDiffusion.IO;

namespace LatentDiffusion.Training;

/// <summary>The settings a training run recorded in its checkpoint, for tools that show a run (ldm serve's runs page).</summary>
public static class RunSettingsFile
{
    /// <summary>The settings in <paramref name="runDir"/>'s checkpoint, name → value as text (strings without quotes),
    /// in the order recorded; empty when the folder has no checkpoint or it records none. A corrupt checkpoint is an
    /// <see cref="LdmException"/>.</summary>
    public static IReadOnlyDictionary<string, string> Read(string runDir)
    {
        string path = Path.Combine(runDir, TrainingRun.CheckpointFile);
        if (!File.Exists(path)) return new Dictionary<string, string>();
        using var file = SafetensorsFile.Open(path);
        if (!file.Metadata.TryGetValue(TrainingRun.SettingsKey, out var json)) return new Dictionary<string, string>();
        try
        {
            return RunSettings.FromJson(json).Values.ToDictionary(kv => kv.Key,
                kv => kv.Value.StartsWith('"') ? JsonSerializer.Deserialize<string>(kv.Value) ?? "" : kv.Value);
        }
        catch (JsonException e)
        {
            throw new LdmException($"'{path}' records settings that are not valid JSON ({e.Message.Split('\n')[0]}); the run's checkpoint is damaged.");
        }
    }
}
