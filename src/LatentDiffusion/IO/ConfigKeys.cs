using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace LatentDiffusion.IO;

/// <summary>
/// The keys a JSON config may hold, and the check that it holds no others. A misspelled key ("hiden_size") would
/// otherwise be skipped and its setting silently take the default; refused instead, naming the key and the known key
/// it most likely meant.
/// </summary>
public static class ConfigKeys
{
    /// <summary>The JSON property names <paramref name="type"/> reads with <paramref name="options"/> (default: its
    /// attribute names), as System.Text.Json maps them.</summary>
    public static IReadOnlyList<string> Of(Type type, JsonSerializerOptions? options = null)
    {
        // A copy with the reflection resolver: the caller's options may not have one yet, and asking them for a
        // contract would freeze them.
        var copy = new JsonSerializerOptions(options ?? JsonSerializerOptions.Default) { TypeInfoResolver = new System.Text.Json.Serialization.Metadata.DefaultJsonTypeInfoResolver() };
        // [JsonIgnore] properties (derived values such as GridSize) are listed by the contract but are no keys.
        return copy.GetTypeInfo(type).Properties
            .Where(p => p.AttributeProvider?.GetCustomAttributes(typeof(JsonIgnoreAttribute), true)
                .OfType<JsonIgnoreAttribute>().All(a => a.Condition != JsonIgnoreCondition.Always) ?? true)
            .Select(p => p.Name).ToList();
    }

    /// <summary>Throws an <see cref="LdmException"/> for the first key of <paramref name="json"/> not in <paramref name="known"/>:
    /// <c>{where} has an unknown key 'hiden_size' (did you mean 'hidden_size'?); ...</c>.</summary>
    /// <param name="where">What holds the keys, e.g. <c>the transformer config of 'model.safetensors'</c>.</param>
    public static void RequireKnown(JsonObject json, IEnumerable<string> known, string where)
    {
        var names = known.ToList();
        foreach (var (key, _) in json)
        {
            if (names.Contains(key, StringComparer.Ordinal)) continue;
            string fix = Closest(key, names) is { } near ? $"did you mean '{near}'?" : $"the known keys are {string.Join(", ", names.Order(StringComparer.Ordinal))}";
            throw new LdmException($"{where} has an unknown key '{key}' ({fix}); fix or remove it, a misspelled key would silently take its default.");
        }
    }

    /// <summary>The known key nearest to <paramref name="key"/> (ignoring case, '-' and '_'), when it is near enough to be a typo.</summary>
    public static string? Closest(string key, IEnumerable<string> known)
    {
        static string Plain(string s) => s.ToLowerInvariant().Replace("_", "").Replace("-", "");
        string k = Plain(key);
        var best = known.Select(n => (name: n, d: Distance(k, Plain(n)))).OrderBy(x => x.d).FirstOrDefault();
        // Two edits (a swapped pair: "stpes") for keys of four letters or more, one for shorter ones ("lr" is not "k").
        int allowed = Math.Min(k.Length, best.name is null ? 0 : Plain(best.name).Length) < 4 ? 1 : Math.Max(2, k.Length / 4);
        return best.name is not null && best.d <= allowed ? best.name : null;
    }

    /// <summary>Levenshtein distance (insertions, deletions, substitutions).</summary>
    static int Distance(string a, string b)
    {
        var row = Enumerable.Range(0, b.Length + 1).ToArray();
        for (int i = 1; i <= a.Length; i++)
        {
            int diagonal = row[0];
            row[0] = i;
            for (int j = 1; j <= b.Length; j++)
            {
                int up = row[j];
                row[j] = Math.Min(Math.Min(row[j] + 1, row[j - 1] + 1), diagonal + (a[i - 1] == b[j - 1] ? 0 : 1));
                diagonal = up;
            }
        }
        return row[b.Length];
    }
}
