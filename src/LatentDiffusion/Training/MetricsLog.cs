using System.Text.Json;
using System.Text.Json.Nodes;

namespace LatentDiffusion.Training;

/// <summary>
/// A JSON-lines log of training metrics (one object per logged step), kept in memory (<see cref="Entries"/>) and, given
/// a path, appended to that file. On resume the file is cut back to the steps the checkpoint covers, so the log never
/// holds a step twice.
/// <para>A training entry holds the step, the means of the step values over the log interval and the learning rate,
/// which follow from the seed and the step alone: a run resumed any number of times (even after kill -9) writes them
/// byte for byte as an uninterrupted run. It ends with the <see cref="ProcessFields"/> (throughput, the step budget of the invocation, memory, time),
/// which measure the process and differ between any two runs; <see cref="DeterministicLines"/> leaves them out to
/// compare runs.</para>
/// </summary>
public sealed class MetricsLog : IDisposable
{
    /// <summary>The fields of a training entry that describe the process that wrote it rather than the run: steps per
    /// second, the step budget it was given (larger when a run is extended), resident memory (MiB) and the UTC time.</summary>
    public static IReadOnlyList<string> ProcessFields { get; } = ["steps_per_sec", "total_steps", "rss_mib", "time"];

    readonly FileStream? _file;
    readonly List<IReadOnlyDictionary<string, object>> _entries = [];

    /// <summary>The file written, or null for a log in memory only.</summary>
    public string? Path { get; }

    /// <summary>The entries written through this object (not those already in the file).</summary>
    public IReadOnlyList<IReadOnlyDictionary<string, object>> Entries => _entries;

    /// <summary>Opens the log for appending; an existing file is first cut back to the entries with step ≤ <paramref name="resumeStep"/>.</summary>
    /// <param name="path">The <c>metrics.jsonl</c> to write, or null to keep the entries in memory only.</param>
    /// <param name="resumeStep">The step the run continues from (0 for a new run).</param>
    public MetricsLog(string? path, long resumeStep)
    {
        Path = path;
        if (path is null) return;
        if (File.Exists(path))
        {
            var kept = File.ReadLines(path).Where(l => StepOf(l) is { } s && s <= resumeStep).ToList();
            IO.AtomicFile.WriteAllText(path, kept.Count == 0 ? "" : string.Join("\n", kept) + "\n");
        }
        // Unbuffered, so a failed write (a full disk) leaves nothing behind for Dispose to flush and fail on again.
        try { _file = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read, bufferSize: 0); }
        catch (Exception e) when (IO.WriteFailure.IsWriteError(e)) { throw IO.WriteFailure.For(path, e); }
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

    /// <summary>Appends one entry (a JSON object, normally with a <c>step</c>) and flushes it.</summary>
    public void Write(IReadOnlyDictionary<string, object> values)
    {
        _entries.Add(values);
        if (_file is null) return;
        try { _file.Write(System.Text.Encoding.UTF8.GetBytes(JsonSerializer.Serialize(values) + "\n")); }
        catch (Exception e) when (IO.WriteFailure.IsWriteError(e)) { throw IO.WriteFailure.For(Path!, e); }
    }

    /// <summary>Reads every entry of a <c>metrics.jsonl</c>, e.g. to plot a loss curve; blank lines are skipped.</summary>
    public static List<Dictionary<string, JsonElement>> Read(string path) =>
        File.ReadLines(path).Where(l => l.Length > 0)
            .Select(l => JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(l)!).ToList();

    /// <summary>
    /// The lines of a <c>metrics.jsonl</c> without the <see cref="ProcessFields"/>, every other field as written (same
    /// bytes, same order): equal for two runs of the same settings and seed however often they were interrupted.
    /// </summary>
    public static List<string> DeterministicLines(string path) =>
        File.ReadLines(path).Where(l => l.Length > 0).Select(l =>
        {
            var entry = JsonNode.Parse(l)!.AsObject();
            foreach (var field in ProcessFields) entry.Remove(field);
            return entry.ToJsonString();
        }).ToList();

    /// <summary>Closes the file.</summary>
    public void Dispose() => _file?.Dispose();
}
