using System.Text.Json;
using System.Text.Json.Nodes;

namespace LatentDiffusion.Training;

/// <summary>
/// The settings that shape a run's loss curve (architecture and hyperparameters), flattened to name → value (JSON
/// text), so a resume can say exactly which of them changed. The step budget and the log, checkpoint and sample
/// intervals are left out by the trainers: a run may be continued with more steps.
/// </summary>
internal sealed class RunSettings
{
    readonly Dictionary<string, string> _values = new(StringComparer.Ordinal);
    /// <summary>Names recorded or left out that a resume does not compare (on either side: an older run may hold them).</summary>
    readonly HashSet<string> _notCompared = new(StringComparer.Ordinal);

    /// <summary>Names and values in the order they were added.</summary>
    public IReadOnlyDictionary<string, string> Values => _values;

    /// <summary>Adds every leaf of <paramref name="json"/> (nested objects as <c>prefix.key.sub</c>) except the top-level names in <paramref name="except"/>.</summary>
    public RunSettings Add(JsonNode? json, string prefix = "", params string[] except)
    {
        if (json is JsonObject obj)
        {
            foreach (var (key, value) in obj)
                if (!except.Contains(key)) Add(value, prefix + key + ".");
        }
        else _values[prefix.TrimEnd('.')] = json?.ToJsonString() ?? "null";
        return this;
    }

    /// <summary>Adds the public properties of an options record, by property name, except <paramref name="except"/>,
    /// which a resume may change (they are not compared, even when a saved run holds them).</summary>
    public RunSettings AddOptions<T>(T options, params string[] except)
    {
        _notCompared.UnionWith(except);
        return Add(JsonSerializer.SerializeToNode(options), "", except);
    }

    /// <summary>Records a fact of this run (e.g. the dtype an auto setting resolved to) that a resume does not compare.</summary>
    public RunSettings Record(string name, string value)
    {
        _notCompared.Add(name);
        _values[name] = JsonSerializer.Serialize(value);
        return this;
    }

    public string ToJson() => JsonSerializer.Serialize(_values);

    public static RunSettings FromJson(string json)
    {
        var settings = new RunSettings();
        foreach (var (k, v) in JsonSerializer.Deserialize<Dictionary<string, string>>(json) ?? []) settings._values[k] = v;
        return settings;
    }

    /// <summary>The names whose values differ between the two (a name missing on one side counts as changed).</summary>
    public IReadOnlyList<string> ChangedFrom(RunSettings saved) =>
        saved._values.Keys.Concat(_values.Keys).Distinct()
            .Where(k => !_notCompared.Contains(k) && saved._values.GetValueOrDefault(k) != _values.GetValueOrDefault(k)).ToList();

    /// <summary>Throws when this run asks for other settings than the saved run in <paramref name="runDir"/> was started with.</summary>
    public void CheckResumable(RunSettings saved, string runDir)
    {
        var changed = ChangedFrom(saved);
        if (changed.Count == 0) return;
        string List(RunSettings s) => string.Join(", ", changed.Select(k => $"{k} {Show(s._values.GetValueOrDefault(k))}"));
        throw new LdmException($"the run in '{runDir}' was started with {List(saved)}; this run asks for {List(this)}; resume with the same settings or choose a new run folder.");
    }

    static string Show(string? json) => json is null ? "(not set)"
        : json.StartsWith('"') ? JsonSerializer.Deserialize<string>(json)! : json;
}
