using System.Text;
using System.Text.Json.Nodes;
using LatentDiffusion.Denoisers;
using LatentDiffusion.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests;

/// <summary>
/// Seeded mutations of a real denoiser checkpoint (ldm's safetensors with the model config in its metadata): the config
/// edited as JSON (values of other types and sizes, keys dropped, added, repeated), the config text garbled byte by
/// byte, other metadata changed, tensors reshaped, retyped, renamed, dropped or added. Loading every mutant into a model
/// either succeeds or throws an <see cref="LdmException"/>, never another exception.
/// </summary>
public sealed class CheckpointFuzzTests : IDisposable
{
    readonly string _dir = RepoPaths.NewTempDir("checkpoint-fuzz");

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    /// <summary>Values put in place of a config value: other types, edge sizes, and sizes no network could have.</summary>
    static readonly JsonNode?[] Replacements =
    [
        null, true, false, 0, 1, 2, 3, -1, 5, 8, 16, 33, 1 << 20, int.MaxValue, long.MaxValue, 0.5, -2.5, 1e300, "", "x", "in-context", "adaln-zero",
        "gpt2", "word", "linear", "cosine", "pixel", "latent", new JsonArray(), new JsonArray(1, 2), new JsonObject(), new JsonObject { ["a"] = 1 },
    ];

    static List<(JsonNode parent, string key)> Leaves(JsonNode node)
    {
        var found = new List<(JsonNode, string)>();
        void Walk(JsonNode n)
        {
            if (n is JsonObject o)
                foreach (var (k, v) in o.ToList())
                {
                    found.Add((o, k));
                    if (v is JsonObject or JsonArray) Walk(v);
                }
            else if (n is JsonArray a)
                for (int i = 0; i < a.Count; i++)
                {
                    found.Add((a, i.ToString()));
                    if (a[i] is JsonObject or JsonArray) Walk(a[i]!);
                }
        }
        Walk(node);
        return found;
    }

    static JsonNode? Copy(JsonNode? n) => n?.DeepClone();

    /// <summary>One structural change of the config: a value replaced, a key dropped, renamed or added.</summary>
    static void MutateConfig(JsonObject config, Random rng)
    {
        var leaves = Leaves(config);
        var (parent, key) = leaves[rng.Next(leaves.Count)];
        int what = rng.Next(10);
        if (parent is JsonArray array)
        {
            int i = int.Parse(key);
            if (what == 0) array.RemoveAt(i);
            else array[i] = Copy(Replacements[rng.Next(Replacements.Length)]);
            return;
        }
        var obj = (JsonObject)parent;
        switch (what)
        {
            case 0: obj.Remove(key); break;
            case 1: obj["unknown_" + rng.Next(3)] = Copy(Replacements[rng.Next(Replacements.Length)]); break;
            case 2:
                var value = obj[key];
                obj.Remove(key);
                obj[key.ToUpperInvariant()] = Copy(value);
                break;
            case 3 when obj[key] is JsonValue v && v.TryGetValue(out long number):
                obj[key] = number + rng.Next(-2, 3);
                break;
            default: obj[key] = Copy(Replacements[rng.Next(Replacements.Length)]); break;
        }
    }

    /// <summary>The config text with a few characters replaced (often JSON punctuation), or a key written twice.</summary>
    static string GarbleText(string json, Random rng)
    {
        if (rng.Next(4) == 0)
        {
            // A repeated key: the second copy of an existing "name": value pair.
            int at = json.IndexOf(",\"", rng.Next(json.Length), StringComparison.Ordinal);
            if (at > 0)
            {
                int end = json.IndexOfAny([',', '}'], at + 1);
                if (end > at) return json[..end] + json[at..end] + json[end..];
            }
        }
        var chars = json.ToCharArray();
        for (int i = 0, n = 1 + rng.Next(4); i < n; i++)
            chars[rng.Next(chars.Length)] = rng.Next(3) == 0 ? (char)rng.Next(32, 0x250) : "{}[]\",:0123456789-e.\\"[rng.Next(21)];
        return new string(chars);
    }

    static readonly ScalarType[] Dtypes = [ScalarType.Float16, ScalarType.BFloat16, ScalarType.Float64, ScalarType.Int64, ScalarType.Int32, ScalarType.Byte, ScalarType.Bool];

    /// <summary>One change of the tensors: a shape changed, a dtype changed, a tensor dropped, renamed or added.</summary>
    static void MutateTensors(Dictionary<string, Tensor> tensors, Random rng)
    {
        var names = tensors.Keys.Order(StringComparer.Ordinal).ToList();
        string name = names[rng.Next(names.Count)];
        var t = tensors[name];
        switch (rng.Next(7))
        {
            case 0: tensors.Remove(name); break;
            case 1: tensors.Remove(name); tensors[name + ".x"] = t; break;
            case 2: tensors["extra." + rng.Next(3)] = torch.zeros(rng.Next(1, 4)); break;
            case 3: tensors[name] = t.to(Dtypes[rng.Next(Dtypes.Length)]); break;
            case 4: tensors[name] = t.reshape(-1); break;
            case 5: tensors[name] = t.dim() > 0 && t.shape[0] > 1 ? t.narrow(0, 0, t.shape[0] - 1).contiguous() : t.unsqueeze(0); break;
            default: tensors[name] = t.dim() > 1 ? t.transpose(0, 1).contiguous() : torch.cat([t.reshape(-1), t.reshape(-1)]); break;
        }
    }

    [Fact]
    public void MutatedDenoiserCheckpointsLoadOrGiveAnLdmException()
    {
        string original = TinyModels.SaveCheckpoint(_dir);
        Dictionary<string, Tensor> weights;
        Dictionary<string, string> metadata;
        using (var file = SafetensorsFile.Open(original))
        {
            weights = file.ReadAll().ToDictionary(kv => kv.Key, kv => kv.Value);
            metadata = file.Metadata.ToDictionary(kv => kv.Key, kv => kv.Value);
        }
        var failures = new List<string>();
        int loaded = 0;
        const int Cases = 1500;
        for (int seed = 0; seed < Cases && failures.Count < 5; seed++)
        {
            var rng = new Random(seed);
            using var scope = torch.NewDisposeScope();
            var meta = new Dictionary<string, string>(metadata);
            var tensors = new Dictionary<string, Tensor>(weights);
            switch (rng.Next(10))
            {
                case < 5:
                    var config = JsonNode.Parse(meta[ModelCheckpoint.ConfigKey])!.AsObject();
                    for (int i = 0, n = 1 + rng.Next(3); i < n; i++) MutateConfig(config, rng);
                    meta[ModelCheckpoint.ConfigKey] = config.ToJsonString();
                    break;
                case 5 or 6:
                    meta[ModelCheckpoint.ConfigKey] = GarbleText(meta[ModelCheckpoint.ConfigKey], rng);
                    break;
                case 7:
                    string key = meta.Keys.Order(StringComparer.Ordinal).ElementAt(rng.Next(meta.Count));
                    if (rng.Next(2) == 0) meta.Remove(key); else meta[key] = GarbleText(meta[key].Length > 0 ? meta[key] : "x", rng);
                    break;
                default:
                    for (int i = 0, n = 1 + rng.Next(2); i < n; i++) MutateTensors(tensors, rng);
                    break;
            }
            string path = Path.Combine(_dir, $"m{seed}.safetensors");
            try
            {
                SafetensorsWriter.Write(path, tensors, meta);
                var (model, _) = DenoiserCheckpoint.Load(path);
                model.Dispose();
                loaded++;
            }
            catch (LdmException) { }
            catch (Exception e) { failures.Add($"seed {seed}: {e.GetType().Name}: {e.Message.Split('\n')[0]}"); }
            finally { File.Delete(path); }
        }
        foreach (var t in weights.Values) t.Dispose();
        Assert.True(failures.Count == 0, string.Join("\n", failures));
        // The mutations must leave some files loadable (values that fit) and refuse most: otherwise they test nothing.
        Assert.InRange(loaded, 1, Cases * 9 / 10);
    }
}
