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
    public const string Format = "ldm-checkpoint/1";
    public const string FormatKey = "ldm.format", ModelKey = "ldm.model", ConfigKey = "ldm.config";

    public required string ModelKind { get; init; }
    public required JsonObject Config { get; init; }
    public required Dictionary<string, Tensor> Weights { get; init; }
    public Dictionary<string, string> Extra { get; init; } = new();
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
    public static ModelCheckpoint Load(string path, string? expectedKind = null)
    {
        using var file = SafetensorsFile.Open(path);
        var header = ReadHeader(file, expectedKind);
        return new ModelCheckpoint
        {
            ModelKind = header.kind,
            Config = header.config,
            Weights = file.ReadAll(),
            Extra = file.Metadata.Where(kv => kv.Key is not (FormatKey or ModelKey or ConfigKey)).ToDictionary(kv => kv.Key, kv => kv.Value),
            Path = path,
        };
    }

    /// <summary>Reads only the model kind and config (cheap: no tensor data is read).</summary>
    public static (string kind, JsonObject config) Peek(string path, string? expectedKind = null)
    {
        using var file = SafetensorsFile.Open(path);
        return ReadHeader(file, expectedKind);
    }

    static (string kind, JsonObject config) ReadHeader(SafetensorsFile file, string? expectedKind)
    {
        if (!file.Metadata.TryGetValue(ModelKey, out var kind) || !file.Metadata.TryGetValue(ConfigKey, out var configJson))
            throw new LdmException($"'{file.Path}' is a safetensors file without an ldm model config; convert official weights first with `ldm convert`.");
        if (expectedKind != null && kind != expectedKind)
            throw new LdmException($"'{file.Path}' holds a '{kind}' model, not a '{expectedKind}' model; pass the right checkpoint for this option.");
        JsonObject config;
        try { config = JsonNode.Parse(configJson) as JsonObject ?? throw new JsonException("not an object"); }
        catch (JsonException e) { throw new LdmException($"'{file.Path}' has an unreadable model config ({e.Message}); re-create the checkpoint."); }
        return (kind, config);
    }

    public static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = false,
        Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter(JsonNamingPolicy.KebabCaseLower) },
    };
}
