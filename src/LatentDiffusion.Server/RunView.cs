using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using LatentDiffusion.Training;

namespace LatentDiffusion.Server;

/// <summary>A sample grid of a run: the step it was drawn at and its path relative to the run folder.</summary>
public sealed record RunGrid(long Step, string File);

/// <summary>
/// What the runs page shows of one run folder, read from its files alone: the metrics log as columns, the state
/// (finished at its step budget; failed or interrupted as the run's <c>status.json</c> says; else running while the log
/// keeps growing and interrupted when it has stopped growing: a process killed without a word), speed and time left, the sample grids (<c>samples_STEP.png</c>, an autoencoder's <c>samples/recon_STEP.png</c>) and the
/// settings recorded in its checkpoint. A half-written last line or an unreadable checkpoint is skipped, never an error.
/// </summary>
public sealed partial class RunView
{
    public const string MetricsFile = DiffusionTrainer.MetricsFile;

    /// <summary>A run whose log has not grown for this long, and longer than a few of its own log intervals, is not running.</summary>
    static readonly TimeSpan QuietFor = TimeSpan.FromMinutes(2);

    public required string Id { get; init; }
    public required string Name { get; init; }
    /// <summary><c>running</c>, <c>finished</c>, <c>failed</c> or <c>interrupted</c>.</summary>
    public required string State { get; init; }
    /// <summary>Why a failed run failed (its one-line error).</summary>
    public string? Error { get; init; }
    public long Step { get; init; }
    public long? TotalSteps { get; init; }
    public double? StepsPerSecond { get; init; }
    public double? SecondsLeft { get; init; }
    /// <summary>When the log was last written (UTC).</summary>
    public DateTime? Updated { get; init; }
    /// <summary>Each logged number by name (loss, lr, …), aligned with <see cref="Steps"/>; null where an entry lacks it.</summary>
    public Dictionary<string, List<double?>> Metrics { get; init; } = [];
    public List<long> Steps { get; init; } = [];
    public List<RunGrid> Grids { get; init; } = [];
    public IReadOnlyDictionary<string, string> Settings { get; init; } = new Dictionary<string, string>();

    /// <summary>Reads the run folder <paramref name="folder"/>; with <paramref name="details"/> false only its state.</summary>
    public static RunView Read(ServedFolder folder, bool details, DateTime now)
    {
        string log = Path.Combine(folder.Path, MetricsFile);
        var steps = new List<long>();
        var metrics = new Dictionary<string, List<double?>>(StringComparer.Ordinal);
        long? total = null;
        double? speed = null;
        var times = new List<DateTime>();
        foreach (var line in ReadLines(log))
        {
            Dictionary<string, JsonElement>? entry;
            try { entry = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(line); }
            catch (JsonException) { continue; }   // a line being written, or a damaged one
            if (entry is null || !entry.TryGetValue("step", out var s) || !s.TryGetInt64(out long step)) continue;
            int row = steps.Count;
            steps.Add(step);
            foreach (var (key, value) in entry)
            {
                if (value.ValueKind != JsonValueKind.Number || key is "step") continue;
                double v = value.GetDouble();
                if (key == "total_steps") { total = (long)v; continue; }
                if (key == "steps_per_sec") speed = v;
                if (!details) continue;
                if (!metrics.TryGetValue(key, out var column)) metrics[key] = column = [];
                while (column.Count < row) column.Add(null);
                column.Add(v);
            }
            if (entry.TryGetValue("time", out var t) && t.ValueKind == JsonValueKind.String
                && DateTime.TryParse(t.GetString(), CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var when))
                times.Add(when);
        }
        foreach (var column in metrics.Values) while (column.Count < steps.Count) column.Add(null);
        long last = steps.Count > 0 ? steps[^1] : 0;
        DateTime? updated = File.Exists(log) ? File.GetLastWriteTimeUtc(log) : null;
        // A run logs every few steps; "quiet" is two minutes or five log intervals, whichever is longer.
        var interval = times.Count >= 2 ? times[^1] - times[^2] : TimeSpan.Zero;
        var quiet = interval * 5 > QuietFor ? interval * 5 : QuietFor;
        var ended = RunStatus.Read(folder.Path);
        string state = total is long budget && last >= budget ? "finished"
            : ended is not null ? ended.State
            : updated is DateTime u && now - u < quiet ? "running" : RunStatus.Interrupted;
        double? left = state == "running" && total is long b && speed is > 0 ? (b - last) / speed : null;
        return new RunView
        {
            Id = folder.Id,
            Name = folder.Id,
            State = state,
            Error = state == RunStatus.Failed ? ended?.Error : null,
            Step = last,
            TotalSteps = total,
            StepsPerSecond = speed,
            SecondsLeft = left,
            Updated = updated,
            Steps = details ? steps : [],
            Metrics = metrics,
            Grids = details ? GridsOf(folder.Path) : [],
            Settings = details ? SettingsOf(folder.Path) : new Dictionary<string, string>(),
        };
    }

    static IEnumerable<string> ReadLines(string path)
    {
        string text;
        try
        {
            // Shared read: the trainer holds the log open for appending.
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(stream);
            text = reader.ReadToEnd();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return []; }
        return text.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0);
    }

    [GeneratedRegex(@"^(?:samples_|recon_)(\d+)\.png$")]
    private static partial Regex GridName();

    /// <summary>The run's sample grids by step: <c>samples_STEP.png</c> beside the log, or in its <c>samples/</c> folder.</summary>
    public static List<RunGrid> GridsOf(string runDir)
    {
        var grids = new List<RunGrid>();
        foreach (var (dir, prefix) in new[] { (runDir, ""), (Path.Combine(runDir, "samples"), "samples/") })
        {
            if (!Directory.Exists(dir)) continue;
            foreach (var file in Directory.EnumerateFiles(dir, "*.png"))
            {
                var m = GridName().Match(Path.GetFileName(file));
                if (m.Success && long.TryParse(m.Groups[1].Value, CultureInfo.InvariantCulture, out long step))
                    grids.Add(new RunGrid(step, prefix + Path.GetFileName(file)));
            }
        }
        return grids.OrderBy(g => g.Step).ToList();
    }

    /// <summary>The settings the run recorded in its checkpoint; empty without a readable checkpoint (one being written, or damaged).</summary>
    static IReadOnlyDictionary<string, string> SettingsOf(string runDir)
    {
        try { return RunSettingsFile.Read(runDir); }
        catch (Exception e) when (e is LdmException or IOException) { return new Dictionary<string, string>(); }
    }
}
