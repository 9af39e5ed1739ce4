using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.IO;

/// <summary>
/// Our model file: one safetensors file whose `__metadata__` holds what is needed to rebuild the model:
/// <c>ldm.format</c> (= <see cref="Format"/>), <c>ldm.model</c> (what kind of model: "transformer", "autoencoder-kl",
/// "classifier", ...), <c>ldm.config</c> (the model's JSON config), plus any extra string entries
/// (e.g. "ldm.latent_scale", "ldm.vocabulary", "ldm.made_by").
/// </summary>
public sealed class ModelCheckpoint
{
    /// <summary>The format tag this build writes.</summary>
    public const string Format = "ldm-checkpoint/1";
    /// <summary>Metadata keys of the format tag, the model kind and the JSON config.</summary>
    public const string FormatKey = "ldm.format", ModelKey = "ldm.model", ConfigKey = "ldm.config";

    /// <summary>What kind of model the file holds (<c>ldm.model</c>), e.g. <c>transformer</c> or <c>autoencoder-kl</c>.</summary>
    public required string ModelKind { get; init; }
    /// <summary>The model's config (<c>ldm.config</c>).</summary>
    public required JsonObject Config { get; init; }
    /// <summary>Every tensor of the file, on the CPU in its stored dtype; the caller disposes them.</summary>
    public required Dictionary<string, Tensor> Weights { get; init; }
    /// <summary>The other metadata entries (e.g. <c>ldm.latent_scale</c>, <c>ldm.vocabulary</c>).</summary>
    public Dictionary<string, string> Extra { get; init; } = new();
    /// <summary>The file it was loaded from (empty for one built in memory).</summary>
    public string Path { get; init; } = "";

    /// <summary>Saves a module's state dict (optionally cast to a storage dtype such as bf16/f16) with its config, atomically.</summary>
    public static void Save(string path, string modelKind, object config, nn.Module module,
        ScalarType? storageDtype = null, IReadOnlyDictionary<string, string>? extra = null)
    {
        using var scope = torch.NewDisposeScope();
        var sd = module.state_dict();
        var tensors = new Dictionary<string, Tensor>();
        foreach (var (k, v) in sd)
            tensors[k] = storageDtype is { } dt && v.is_floating_point() ? v.detach().to(dt) : v.detach();
        Save(path, modelKind, config, tensors, extra);
    }

    /// <summary>Saves <paramref name="tensors"/> as they are with the kind, the config (a JSON node or an object serialized
    /// in snake_case) and <paramref name="extra"/> metadata, atomically.</summary>
    public static void Save(string path, string modelKind, object config, IReadOnlyDictionary<string, Tensor> tensors,
        IReadOnlyDictionary<string, string>? extra = null)
    {
        string configJson = config is JsonNode node ? node.ToJsonString() : JsonSerializer.Serialize(config, config.GetType(), JsonOptions);
        var meta = new Dictionary<string, string>
        {
            [FormatKey] = Format,
            [ModelKey] = modelKind,
            [ConfigKey] = configJson,
        };
        if (extra != null) foreach (var (k, v) in extra) meta[k] = v;
        SafetensorsWriter.Write(path, tensors, meta);
    }

    /// <summary>Reads the metadata and every tensor. <paramref name="expectedKind"/> (if given) must match ldm.model.</summary>
    public static ModelCheckpoint Load(string path, string? expectedKind = null) =>
        Load(path, expectedKind is null ? null : [expectedKind]);

    /// <summary>Reads the metadata and every tensor. ldm.model must be one of <paramref name="expectedKinds"/> (if given).</summary>
    public static ModelCheckpoint Load(string path, IEnumerable<string>? expectedKinds)
    {
        using var file = SafetensorsFile.Open(path);
        var header = ReadHeader(file, expectedKinds);
        var weights = file.ReadAll();
        try { CheckFinite(path, weights); }
        catch
        {
            foreach (var t in weights.Values) t.Dispose();
            throw;
        }
        return new ModelCheckpoint
        {
            ModelKind = header.kind,
            Config = header.config,
            Weights = weights,
            Extra = file.Metadata.Where(kv => kv.Key is not (FormatKey or ModelKey or ConfigKey)).ToDictionary(kv => kv.Key, kv => kv.Value),
            Path = path,
        };
    }

    /// <summary>
    /// Refuses weights holding NaN or ±Inf (a diverged run saved anyway, a damaged file): such a model loads and then
    /// draws black or noise images, or poisons an FID, with no hint why. One isfinite pass per float tensor, at load.
    /// </summary>
    public static void CheckFinite(string path, IReadOnlyDictionary<string, Tensor> weights)
    {
        using var _ = torch.no_grad();
        foreach (var (name, t) in weights)
        {
            if (!t.is_floating_point() || t.NumberOfElements == 0) continue;
            using var finite = torch.isfinite(t);
            using var all = finite.all();
            if (all.item<bool>()) continue;
            using var bad = finite.logical_not().sum();
            throw new LdmException($"'{path}' has {bad.item<long>()} NaN or infinite values in tensor '{name}'; the model is damaged (saved from a diverged training run?): use an earlier checkpoint or train again.");
        }
    }

    /// <summary>Reads only the model kind and config (cheap: no tensor data is read).</summary>
    public static (string kind, JsonObject config) Peek(string path, string? expectedKind = null) =>
        Peek(path, expectedKind is null ? null : [expectedKind]);

    /// <summary>Reads only the model kind and config; ldm.model must be one of <paramref name="expectedKinds"/> (if given).</summary>
    public static (string kind, JsonObject config) Peek(string path, IEnumerable<string>? expectedKinds)
    {
        using var file = SafetensorsFile.Open(path);
        return ReadHeader(file, expectedKinds);
    }

    /// <summary>The newest file format this build reads (the N of <c>ldm-checkpoint/N</c>).</summary>
    public const int FormatVersion = 1;

    static (string kind, JsonObject config) ReadHeader(SafetensorsFile file, IEnumerable<string>? expectedKinds)
    {
        if (!file.Metadata.TryGetValue(ModelKey, out var kind) || !file.Metadata.TryGetValue(ConfigKey, out var configJson))
            throw new LdmException($"'{file.Path}' is a safetensors file without an ldm model config; convert official weights first with `ldm convert`.");
        CheckFormat(file.Path, file.Metadata.GetValueOrDefault(FormatKey));
        if (expectedKinds?.ToList() is { } kinds && !kinds.Contains(kind))
            throw new LdmException($"'{file.Path}' holds a '{kind}' model, not a {string.Join(" or ", kinds.Select(k => $"'{k}'"))} model; pass the right checkpoint for this option.");
        JsonObject config;
        // Duplicate keys are refused while parsing (at every depth): JSON nodes read an object's keys only when first
        // used, and a key given twice would then throw an ArgumentException far from here.
        try { config = JsonNode.Parse(configJson, documentOptions: StrictJson) as JsonObject ?? throw new JsonException("not an object"); }
        catch (JsonException e) { throw new LdmException($"'{file.Path}' has an unreadable model config ({e.Message}); re-create the checkpoint."); }
        return (kind, config);
    }

    /// <summary>How a model config is parsed: a key given twice is an error, not a value silently picked.</summary>
    static readonly JsonDocumentOptions StrictJson = new() { AllowDuplicateProperties = false };

    /// <summary>Refuses a file of a newer format than this build reads (no format entry: an early file, format 1).</summary>
    static void CheckFormat(string path, string? format)
    {
        if (format is null) return;
        const string prefix = "ldm-checkpoint/";
        if (!format.StartsWith(prefix, StringComparison.Ordinal)
            || !int.TryParse(format[prefix.Length..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int version))
            throw new LdmException($"'{path}' names an unknown file format '{format}' (this build reads {Format}); it was not written by LatentDiffusion.");
        if (version > FormatVersion)
            throw new LdmException($"'{path}' was made by a newer ldm (file format {format}; this one reads up to {Format}); update ldm (LatentDiffusion) to load it.");
    }

    /// <summary>How configs are serialized: snake_case properties, kebab-case enums.</summary>
    internal static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = false,
        Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter(JsonNamingPolicy.KebabCaseLower) },
    };
}
