using System.Text.Json;
using LatentDiffusion.IO;

namespace LatentDiffusion.Studies;

/// <summary>
/// The evaluations of a study, kept in <c>results.jsonl</c> of its folder (one <see cref="StudyRecord"/> per line,
/// rewritten atomically on every addition, so a killed study never leaves half a line). A resumed study reads them back
/// and skips what is done.
/// </summary>
public sealed class StudyResults
{
    /// <summary>The file name in a study folder.</summary>
    public const string FileName = "results.jsonl";
    static readonly JsonSerializerOptions Json = new() { WriteIndented = false };

    readonly List<StudyRecord> _records = [];
    readonly string? _path;

    /// <summary>Every evaluation so far, in the order made.</summary>
    public IReadOnlyList<StudyRecord> Records => _records;

    StudyResults(string? path) => _path = path;

    /// <summary>Results kept in memory only.</summary>
    public static StudyResults InMemory() => new(null);

    /// <summary>The results in <paramref name="studyDir"/> (none when the file does not exist yet); new ones are written there.</summary>
    public static StudyResults Open(string studyDir)
    {
        var results = new StudyResults(Path.Combine(studyDir, FileName));
        if (File.Exists(results._path))
        {
            int line = 0;
            foreach (var text in File.ReadLines(results._path!))
            {
                line++;
                if (text.Trim().Length == 0) continue;
                try { results._records.Add(JsonSerializer.Deserialize<StudyRecord>(text, Json) ?? throw new JsonException("null record")); }
                catch (JsonException e)
                {
                    throw new LdmException($"'{results._path}' line {line} is not a study record ({e.Message.Split('\n')[0]}); remove the line or the file to evaluate again.");
                }
            }
        }
        return results;
    }

    /// <summary>The evaluation of (configuration, seed, step), or null when it has not been made.</summary>
    public StudyRecord? Find(string configuration, long seed, long step) =>
        _records.FirstOrDefault(r => r.Configuration == configuration && r.Seed == seed && r.Step == step);

    /// <summary>The latest evaluation of a run before <paramref name="step"/>, or null.</summary>
    public StudyRecord? Before(string configuration, long seed, long step) =>
        _records.Where(r => r.Configuration == configuration && r.Seed == seed && r.Step < step).MaxBy(r => r.Step);

    /// <summary>Adds a record and rewrites the file.</summary>
    public void Add(StudyRecord record)
    {
        _records.Add(record);
        if (_path is not null)
            AtomicFile.WriteAllText(_path, string.Concat(_records.Select(r => JsonSerializer.Serialize(r, Json) + "\n")));
    }
}
