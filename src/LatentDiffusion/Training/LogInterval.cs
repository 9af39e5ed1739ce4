using System.Text.Json;
using System.Text.Json.Nodes;

namespace LatentDiffusion.Training;

/// <summary>
/// The metrics of the steps since the last metrics entry: a sum per value name (in the order the names came) and the
/// number of steps summed. A checkpoint carries it (<see cref="TrainingRun.LogIntervalKey"/>), so a run resumed in the
/// middle of a log interval writes the entry an uninterrupted run writes: the mean over the whole interval.
/// </summary>
internal sealed class LogInterval
{
    readonly Dictionary<string, double> _sums = new(StringComparer.Ordinal);

    /// <summary>Steps summed so far.</summary>
    public long Steps { get; private set; }

    /// <summary>Adds one step's values.</summary>
    public void Add(IReadOnlyDictionary<string, double> values)
    {
        foreach (var (name, value) in values) _sums[name] = _sums.GetValueOrDefault(name) + value;
        Steps++;
    }

    /// <summary>The mean of each value over the interval, in the order the names came.</summary>
    public IEnumerable<(string name, double mean)> Means() => _sums.Select(kv => (kv.Key, kv.Value / Steps));

    /// <summary>JSON text: <c>{"steps": n, "sums": {"loss": ...}}</c>. Doubles are written in their shortest
    /// round-trip form, so the sums read back bit for bit.</summary>
    public string ToJson()
    {
        var sums = new JsonObject();
        foreach (var (name, sum) in _sums) sums[name] = sum;
        return new JsonObject { ["steps"] = Steps, ["sums"] = sums }.ToJsonString();
    }

    /// <summary>Reads <see cref="ToJson"/> text of a checkpoint at <paramref name="step"/>; anything else is a corrupt-file
    /// <see cref="LdmException"/> naming <paramref name="path"/>.</summary>
    public static LogInterval FromJson(string json, long step, string path)
    {
        var interval = new LogInterval();
        string? problem = null;
        try
        {
            if (JsonNode.Parse(json) is not JsonObject root || root["steps"] is not JsonValue steps || !steps.TryGetValue<long>(out long count)
                || root["sums"] is not JsonObject sums)
                problem = "not {\"steps\": n, \"sums\": {...}}";
            else
            {
                interval.Steps = count;
                foreach (var (name, sum) in sums)
                {
                    if (sum is not JsonValue v || !v.TryGetValue<double>(out double value) || !double.IsFinite(value)) { problem = $"the sum of '{name}' is not a finite number"; break; }
                    interval._sums[name] = value;
                }
                if (problem is null && (count < 0 || count > step || (count == 0) != (interval._sums.Count == 0)))
                    problem = $"{count} steps do not fit a checkpoint at step {step}";
            }
        }
        catch (JsonException e) { problem = e.Message; }
        if (problem is not null)
            throw new LdmException($"the training checkpoint '{path}' is corrupt (its {TrainingRun.LogIntervalKey} entry: {problem}); resume from a good copy or choose a new run folder.");
        return interval;
    }
}
