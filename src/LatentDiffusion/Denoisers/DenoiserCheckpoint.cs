using System.Text.Json;
using System.Text.Json.Nodes;
using LatentDiffusion.Diffusion;
using LatentDiffusion.IO;
using LatentDiffusion.Text;
using LatentDiffusion.Transformers;
using LatentDiffusion.UNets;
using static TorchSharp.torch;

namespace LatentDiffusion.Denoisers;

/// <summary>
/// Saves and loads a denoiser as one <see cref="ModelCheckpoint"/> whose model kind is the backbone's kind and whose
/// config is the <see cref="DenoiserInfo"/> as JSON — the one place that JSON is written and read:
/// <c>{"transformer": {...}, "diffusion": {...}, "space": "latent", "class_names": [...], "autoencoder": "ae.safetensors",
/// "sampling": {"sampler": "ddim", "steps": 50, "guidance": 1}}</c>. An unknown or misspelled key anywhere is an error,
/// never a silent default.
/// </summary>
public static class DenoiserCheckpoint
{
    const string DiffusionKey = "diffusion", SpaceKey = "space", ClassNamesKey = "class_names", AutoencoderKey = "autoencoder", SamplingKey = "sampling";

    /// <summary>Backbone kinds this build reads, with their config parsers.</summary>
    static readonly Dictionary<string, Func<string, IBackboneConfig>> Backbones = new()
    {
        [TransformerConfig.BackboneKind] = json => TransformerConfig.FromJson(json),
        [UNetConfig.BackboneKind] = json => UNetConfig.FromJson(json),
    };

    static readonly JsonSerializerOptions Json = new() { WriteIndented = false };

    /// <summary>True when a checkpoint's model kind (<see cref="ModelCheckpoint.ModelKey"/>) is a denoiser this build reads
    /// (a folder of models also holds autoencoders and classifiers).</summary>
    public static bool IsDenoiserKind(string kind) => Backbones.ContainsKey(kind);

    /// <summary>Writes the weights of <paramref name="model"/> and <paramref name="info"/> atomically, optionally storing floats as <paramref name="storageDtype"/>.</summary>
    public static void Save(string path, DenoiserNetwork model, DenoiserInfo info, ScalarType? storageDtype = null,
        IReadOnlyDictionary<string, string>? extra = null) =>
        ModelCheckpoint.Save(path, info.Backbone.Kind, ToJson(info), model, storageDtype, Metadata(info, extra));

    /// <summary>
    /// The extra metadata plus the backbone's cost (<see cref="ModelCost.ParametersKey"/>,
    /// <see cref="ModelCost.ForwardFlopsKey"/>: informative, recomputed from the config on every save, never read back
    /// to build the model, so files without them load the same) and, for a word-vocabulary text model, its vocabulary.
    /// </summary>
    public static Dictionary<string, string> Metadata(DenoiserInfo info, IReadOnlyDictionary<string, string>? extra = null)
    {
        var all = extra?.ToDictionary(kv => kv.Key, kv => kv.Value) ?? new Dictionary<string, string>();
        foreach (var (key, value) in ModelCost.Of(info.Backbone).ToMetadata()) all[key] = value;
        if (info.Backbone.Text is not null && info.TextTokenizer is WordVocabulary vocabulary)
            all[WordVocabulary.MetadataKey] = vocabulary.ToJson();
        return all;
    }

    /// <summary>The description as the config JSON of the file.</summary>
    public static JsonObject ToJson(DenoiserInfo info)
    {
        var json = new JsonObject
        {
            [info.Backbone.Kind] = JsonNode.Parse(info.Backbone.ToJson()),
            [DiffusionKey] = JsonSerializer.SerializeToNode(info.Diffusion, Json),
            [SpaceKey] = JsonSerializer.SerializeToNode(info.Space, Json),
            [ClassNamesKey] = new JsonArray(info.ClassNames.Select(n => (JsonNode)JsonValue.Create(n)!).ToArray()),
        };
        if (!string.IsNullOrEmpty(info.Autoencoder)) json[AutoencoderKey] = info.Autoencoder;
        if (info.Sampling is { } sampling) json[SamplingKey] = JsonSerializer.SerializeToNode(sampling, Json);
        return json;
    }

    /// <summary>
    /// The description of a checkpoint's config; a text model's tokenizer is rebuilt from <paramref name="vocabularyJson"/>
    /// (word) or the GPT-2 data. <paramref name="source"/> names the file in errors.
    /// </summary>
    public static DenoiserInfo FromJson(JsonObject config, string source, string? vocabularyJson = null)
    {
        // Every key of every section is checked first: a misspelled one would otherwise take its default silently
        // (and a misspelled backbone would read as "no backbone").
        ConfigKeys.RequireKnown(config, [.. Backbones.Keys, DiffusionKey, SpaceKey, ClassNamesKey, AutoencoderKey, SamplingKey], $"the model config of '{source}'");
        var backboneKeys = config.Select(kv => kv.Key).Where(Backbones.ContainsKey).ToList();
        if (backboneKeys.Count != 1)
            throw new LdmException(backboneKeys.Count == 0
                ? $"'{source}' has no backbone config ({string.Join(" or ", Backbones.Keys)}); it is not a denoiser checkpoint of ldm."
                : $"'{source}' has configs of several backbones ({string.Join(", ", backboneKeys)}); re-create the checkpoint.");
        CheckSectionKeys(config, backboneKeys[0], source);
        try
        {
            string kind = backboneKeys[0];
            var backbone = Backbones[kind](config[kind]!.ToJsonString());
            var diffusion = config[DiffusionKey] is JsonObject d && d.Count > 0
                ? JsonSerializer.Deserialize<DiffusionConfig>(d.ToJsonString(), Json)!
                : new DiffusionConfig { LearnSigma = backbone.LearnSigma };
            var space = config[SpaceKey] is { } s ? JsonSerializer.Deserialize<DataSpace>(s.ToJsonString(), Json) : DataSpace.Latent;
            var names = config[ClassNamesKey] is JsonArray a ? a.Select(n => (string)n!).ToList() : new List<string>();
            var info = new DenoiserInfo(backbone, diffusion, space, names)
            {
                Tokenizer = backbone.Text is { } text ? TextTokenizers.Load(text.Tokenizer, vocabularyJson, source) : null,
                Autoencoder = (string?)config[AutoencoderKey],
                Sampling = config[SamplingKey] is JsonObject sampling ? JsonSerializer.Deserialize<RecommendedSampling>(sampling.ToJsonString(), Json) : null,
            };
            return info.Check($"'{source}'");
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            throw new LdmException($"'{source}' has a model config this version cannot read: {e.Message}; it was written by a newer version of LatentDiffusion or edited by hand.", e);
        }
    }

    /// <summary>The config types of the sections, whose JSON names are the keys a section may hold.</summary>
    static readonly Dictionary<string, Type> SectionTypes = new()
    {
        [TransformerConfig.BackboneKind] = typeof(TransformerConfig),
        [UNetConfig.BackboneKind] = typeof(UNetConfig),
        [DiffusionKey] = typeof(DiffusionConfig),
        [SamplingKey] = typeof(RecommendedSampling),
    };

    static void CheckSectionKeys(JsonObject config, string backbone, string source)
    {
        foreach (var section in new[] { backbone, DiffusionKey, SamplingKey })
            if (config[section] is JsonObject o)
                ConfigKeys.RequireKnown(o, ConfigKeys.Of(SectionTypes[section], Json), $"the {section} config of '{source}'");
        // The backbone section may be any JSON value in a damaged file: indexing a non-object would throw.
        if (config[backbone] is JsonObject b && b["text"] is JsonObject text)
            ConfigKeys.RequireKnown(text, ConfigKeys.Of(typeof(TextConditionConfig), Json), $"the {backbone}.text config of '{source}'");
    }

    /// <summary>Reads the description (and a text model's vocabulary) only, no weights.</summary>
    public static DenoiserInfo PeekInfo(string path)
    {
        var (_, config) = ModelCheckpoint.Peek(path, Backbones.Keys);
        using var file = SafetensorsFile.Open(path);
        return FromJson(config, path, file.Metadata.GetValueOrDefault(WordVocabulary.MetadataKey));
    }

    /// <summary>Rebuilds the network from the file and loads its weights (float32, eval mode, on the CPU).</summary>
    public static (DenoiserNetwork model, DenoiserInfo info) Load(string path)
    {
        var ckpt = ModelCheckpoint.Load(path, Backbones.Keys);
        try
        {
            var info = FromJson(ckpt.Config, path, ckpt.Extra.GetValueOrDefault(WordVocabulary.MetadataKey));
            CheckSizeFitsWeights(info.Backbone, ckpt.Weights, path);
            var model = info.Backbone.Build();
            StateDict.Load(model, ckpt.Weights, path);
            model.eval();
            return (model, info);
        }
        finally
        {
            foreach (var t in ckpt.Weights.Values) t.Dispose();
        }
    }

    /// <summary>
    /// Refuses a config whose network is larger than the weights stored beside it, before the network is built: a
    /// damaged or edited config (depth 2^31, a width of millions) would otherwise allocate gigabytes, or hang, before
    /// the weights were found not to fit. Every network's parameters are stored, so a config that fits has at most as
    /// many parameters as the file holds numbers.
    /// </summary>
    static void CheckSizeFitsWeights(IBackboneConfig backbone, IReadOnlyDictionary<string, Tensor> weights, string path)
    {
        long stored = weights.Values.Sum(t => t.numel());
        // The parameter count loops over the blocks: bound the block counts first, so a huge count cannot stall it.
        long blocks = backbone switch
        {
            TransformerConfig t => t.Depth,
            UNets.UNetConfig u => (long)u.NumResBlocks * Math.Max(1, u.ChannelMult.Length) * Math.Max(1, u.TransformerDepth),
            _ => 0,
        };
        long parameters = blocks > stored ? long.MaxValue : ModelCost.Of(backbone).Parameters;
        if (parameters <= 0 || parameters > stored)
            throw new LdmException($"the weights in '{path}' do not fit its model config: the config describes a network of {(parameters is long.MaxValue or <= 0 ? "an impossible size" : $"{parameters:N0} parameters")}, but the file holds {stored:N0} numbers; check that the checkpoint and its config belong together, or re-create it.");
    }

    /// <summary>Rewrites only the description of a checkpoint (e.g. its recommended sampling settings), keeping every tensor.</summary>
    public static void Rewrite(string path, string output, Func<DenoiserInfo, DenoiserInfo> change, ScalarType? storageDtype = null)
    {
        var ckpt = ModelCheckpoint.Load(path, Backbones.Keys);
        try
        {
            var info = change(FromJson(ckpt.Config, path, ckpt.Extra.GetValueOrDefault(WordVocabulary.MetadataKey))).Check($"'{path}'");
            var tensors = ckpt.Weights.ToDictionary(kv => kv.Key,
                kv => storageDtype is { } dt && kv.Value.is_floating_point() ? kv.Value.to(dt) : kv.Value);
            try { ModelCheckpoint.Save(output, info.Backbone.Kind, ToJson(info), tensors, Metadata(info, ckpt.Extra)); }
            finally { foreach (var (k, t) in tensors) if (!ReferenceEquals(t, ckpt.Weights[k])) t.Dispose(); }
        }
        finally
        {
            foreach (var t in ckpt.Weights.Values) t.Dispose();
        }
    }
}
