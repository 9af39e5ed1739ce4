using System.Text.Json;
using LatentDiffusion.Studies;

namespace LatentDiffusion.Server;

/// <summary>
/// A study folder as the runs page shows it: the Markdown report of <c>ldm study</c> (its table, ranking and plots; the
/// page renders it, images through <c>/api/study/file</c>), the evaluations of <c>results.jsonl</c> for the curves
/// drawn in the page, and the study's own runs.
/// </summary>
public sealed record StudyView(string Id, string? Report, IReadOnlyList<JsonElement> Results, IReadOnlyList<string> Runs)
{
    public static StudyView Read(ServedFolder study)
    {
        string report = Path.Combine(study.Path, StudyReport.FileName);
        string results = Path.Combine(study.Path, StudyResults.FileName);
        var records = new List<JsonElement>();
        if (File.Exists(results))
            foreach (var line in File.ReadLines(results))
            {
                // A line being written (or a damaged one) is skipped.
                try { if (line.Length > 0) records.Add(JsonSerializer.Deserialize<JsonElement>(line)); }
                catch (JsonException) { }
            }
        string runs = Path.Combine(study.Path, Study.RunsFolder);
        var runIds = Directory.Exists(runs)
            ? Directory.EnumerateDirectories(runs).Select(d => $"{study.Id}/{Study.RunsFolder}/{Path.GetFileName(d)}").Order(StringComparer.Ordinal).ToList()
            : [];
        return new StudyView(study.Id, File.Exists(report) ? File.ReadAllText(report) : null, records, runIds);
    }
}
