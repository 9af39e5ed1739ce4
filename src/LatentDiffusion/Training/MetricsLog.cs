using System.Text.Json;

namespace LatentDiffusion.Training;

/// <summary>
/// A JSON-lines log of training metrics (one object per logged step). On resume the file is cut back to the
/// steps the checkpoint covers, so the log never holds a step twice.
/// </summary>
public sealed class MetricsLog : IDisposable
{
    readonly StreamWriter _writer;
    public string Path { get; }

    public MetricsLog(string path, long resumeStep)
    {
        Path = path;
        if (File.Exists(path))
        {
            var kept = File.ReadLines(path).Where(l => StepOf(l) is { } s && s <= resumeStep).ToList();
            IO.AtomicFile.WriteAllText(path, kept.Count == 0 ? "" : string.Join("\n", kept) + "\n");
        }
        _writer = new StreamWriter(new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read)) { AutoFlush = true };
    }

    static long? StepOf(string line)
    {
        try
        {
            using var doc = JsonDocument.Parse(line);
            return doc.RootElement.TryGetProperty("step", out var s) ? s.GetInt64() : null;
        }
        catch (JsonException) { return null; }
    }

    public void Write(IReadOnlyDictionary<string, object> values) => _writer.WriteLine(JsonSerializer.Serialize(values));

    public static List<Dictionary<string, JsonElement>> Read(string path) =>
        File.ReadLines(path).Where(l => l.Length > 0)
            .Select(l => JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(l)!).ToList();

    public void Dispose() => _writer.Dispose();
}
