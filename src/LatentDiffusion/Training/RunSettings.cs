using System.Text.Json;
using System.Text.Json.Nodes;

namespace LatentDiffusion.Training;

/// <summary>
/// The settings that shape a run's loss curve (architecture, hyperparameters, the size of the data), flattened to
/// name → value (JSON text), so a resume can say exactly which of them changed. The step budget and the log,
/// checkpoint and sample intervals are left out by the trainers: a run may be continued with more steps.
/// </summary>
internal sealed class RunSettings
{
    readonly Dictionary<string, string> _values = new(StringComparer.Ordinal);
    /// <summary>Names recorded or left out that a resume does not compare (on either side: an older run may hold them).</summary>
    readonly HashSet<string> _notCompared = new(StringComparer.Ordinal);
    /// <summary>Names recorded since a later version: compared only when the saved run holds them, so older runs resume as before.</summary>
    readonly HashSet<string> _comparedWhenSaved = new(StringComparer.Ordinal);
    /// <summary>The options type each options setting came from (for a front end to name its flag).</summary>
    readonly Dictionary<string, string> _owners = new(StringComparer.Ordinal);

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
        var json = JsonSerializer.SerializeToNode(options);
        if (json is JsonObject obj)
            foreach (var (key, _) in obj) _owners[key] = typeof(T).Name;
        return Add(json, "", except);
    }

    /// <summary>Adds a setting that runs saved by earlier versions do not hold: it is compared only when the saved run
    /// has it (a run without it resumes unchecked on this name).</summary>
    public RunSettings AddSinceLaterVersion(string name, JsonNode value)
    {
        _comparedWhenSaved.Add(name);
        _values[name] = value.ToJsonString();
        return this;
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

    /// <summary>The settings whose values differ between the saved run and this one (a name missing on one side counts
    /// as changed, except a name recorded since a later version that the saved run does not hold).</summary>
    public IReadOnlyList<RunSettingChange> ChangesFrom(RunSettings saved) =>
        saved._values.Keys.Concat(_values.Keys).Distinct()
            .Where(k => !_notCompared.Contains(k) && !(_comparedWhenSaved.Contains(k) && !saved._values.ContainsKey(k)))
            .Where(k => saved._values.GetValueOrDefault(k) != _values.GetValueOrDefault(k))
            .Select(k => new RunSettingChange(k, Show(saved._values.GetValueOrDefault(k)), Show(_values.GetValueOrDefault(k)), _owners.GetValueOrDefault(k)))
            .ToList();

    /// <summary>
    /// The changes from the saved run in <paramref name="runDir"/>: an empty list when there are none; the list when
    /// <paramref name="allowChanges"/>; else a <see cref="RunSettingsChangedException"/> that names each change.
    /// </summary>
    public IReadOnlyList<RunSettingChange> CheckResumable(RunSettings saved, string runDir, bool allowChanges)
    {
        var changes = ChangesFrom(saved);
        if (changes.Count == 0 || allowChanges) return changes;
        throw new RunSettingsChangedException(runDir, changes);
    }

    static string? Show(string? json) => json is null ? null
        : json.StartsWith('"') ? JsonSerializer.Deserialize<string>(json)! : json;
}
