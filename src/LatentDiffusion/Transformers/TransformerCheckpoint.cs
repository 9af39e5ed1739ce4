using System.Text.Json.Nodes;
using LatentDiffusion.IO;
using LatentDiffusion.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Transformers;

/// <summary>What a denoiser checkpoint says besides its weights: the model, its diffusion process, and its data.</summary>
/// <param name="Transformer">The network's config.</param>
/// <param name="Diffusion">The diffusion process it was trained with (<c>Diffusion.DiffusionConfig</c> as JSON).</param>
/// <param name="Space"><c>pixel</c> (images in [-1, 1]) or <c>latent</c> (autoencoder latents, scaled).</param>
/// <param name="ClassNames">Names of the class ids, when known (ImageNet models carry none).</param>
public sealed record DenoiserInfo(TransformerConfig Transformer, JsonObject Diffusion, string Space, IReadOnlyList<string> ClassNames)
{
    public bool IsPixelSpace => Space == "pixel";

    /// <summary><c>class</c> or <c>text</c>.</summary>
    public string Condition => Transformer.Condition;

    /// <summary>
    /// Text models: the tokenizer of the captions (a <see cref="WordVocabulary"/> is saved with the checkpoint under
    /// <see cref="WordVocabulary.MetadataKey"/>); null for class models.
    /// </summary>
    public ITextTokenizer? Tokenizer { get; init; }

    /// <summary>
    /// Latent models: the file name of the autoencoder that decodes the samples, looked up in the denoiser file's own
    /// folder (so a model and its autoencoder travel together, as in <c>models/</c>); null when unknown.
    /// </summary>
    public string? Autoencoder { get; init; }

    /// <summary>The path of <see cref="Autoencoder"/> next to <paramref name="denoiserPath"/>, when it names one that exists.</summary>
    public string? AutoencoderBeside(string denoiserPath)
    {
        if (IsPixelSpace || string.IsNullOrEmpty(Autoencoder)) return null;
        string path = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(denoiserPath)) ?? ".", Autoencoder);
        return File.Exists(path) ? path : null;
    }

    /// <summary>The tokenizer of a text model; a user error for a class model or a missing tokenizer.</summary>
    public ITextTokenizer TextTokenizer => Tokenizer ?? throw new LdmException(Transformer.IsTextConditional
        ? "this text model has no tokenizer attached; load it with TransformerCheckpoint.Load, which reads the vocabulary."
        : "this is a class-conditional model; it takes class ids, not captions.");

    /// <summary>Checks that a text model's tokenizer fits its config (kind and vocabulary size).</summary>
    public DenoiserInfo CheckTokenizer(string source)
    {
        if (Transformer.Text is not { } text) return this;
        var tok = TextTokenizer;
        if (TextTokenizers.Normalize(text.Tokenizer) != tok.Kind || tok.VocabSize != text.VocabSize)
            throw new LdmException($"'{source}' is a text model for a {text.Tokenizer} tokenizer of {text.VocabSize} tokens, but its tokenizer is {tok.Kind} with {tok.VocabSize}; re-create the checkpoint.");
        return this;
    }
}

/// <summary>
/// Saves and loads a <see cref="DiffusionTransformer"/> as one <see cref="ModelCheckpoint"/> (model kind
/// <c>transformer</c>): the config JSON holds the network, the diffusion process, the space and the class names,
/// so the file alone rebuilds and samples the model.
/// </summary>
public static class TransformerCheckpoint
{
    public const string Kind = "transformer";

    public static void Save(string path, DiffusionTransformer model, DenoiserInfo info, ScalarType? storageDtype = null,
        IReadOnlyDictionary<string, string>? extra = null) =>
        ModelCheckpoint.Save(path, Kind, ToJson(info), model, storageDtype, WithVocabulary(info, extra));

    /// <summary>The extra metadata plus, for a word-vocabulary text model, its vocabulary.</summary>
    public static Dictionary<string, string> WithVocabulary(DenoiserInfo info, IReadOnlyDictionary<string, string>? extra)
    {
        var all = extra?.ToDictionary(kv => kv.Key, kv => kv.Value) ?? new Dictionary<string, string>();
        if (info.Transformer.IsTextConditional && info.TextTokenizer is WordVocabulary vocabulary)
            all[WordVocabulary.MetadataKey] = vocabulary.ToJson();
        return all;
    }

    public static JsonObject ToJson(DenoiserInfo info)
    {
        var json = new JsonObject
        {
            ["transformer"] = JsonNode.Parse(info.Transformer.ToJson()),
            ["diffusion"] = info.Diffusion.DeepClone(),
            ["space"] = info.Space,
            ["class_names"] = new JsonArray(info.ClassNames.Select(n => (JsonNode)JsonValue.Create(n)!).ToArray()),
        };
        if (!string.IsNullOrEmpty(info.Autoencoder)) json["autoencoder"] = info.Autoencoder;
        return json;
    }

    /// <summary>The info of a checkpoint's config; a text model's tokenizer is rebuilt from <paramref name="vocabularyJson"/> (word) or the GPT-2 data.</summary>
    public static DenoiserInfo InfoFromJson(JsonObject config, string source, string? vocabularyJson = null)
    {
        if (config["transformer"] is not JsonObject t)
            throw new LdmException($"'{source}' has no transformer config; it is not a denoiser checkpoint of ldm.");
        string space = (string?)config["space"] ?? "latent";
        if (space is not ("pixel" or "latent"))
            throw new LdmException($"'{source}' names an unknown space '{space}' (pixel or latent); re-create the checkpoint.");
        var names = config["class_names"] is JsonArray a ? a.Select(n => (string)n!).ToList() : new List<string>();
        var transformer = TransformerConfig.FromJson(t.ToJsonString());
        var info = new DenoiserInfo(transformer, config["diffusion"] as JsonObject ?? new JsonObject(), space, names)
        {
            Tokenizer = transformer.Text is { } text ? TextTokenizers.Load(text.Tokenizer, vocabularyJson, source) : null,
            Autoencoder = (string?)config["autoencoder"],
        };
        return info.CheckTokenizer(source);
    }

    /// <summary>Reads the config (and a text model's vocabulary) only, no weights.</summary>
    public static DenoiserInfo PeekInfo(string path)
    {
        var (_, config) = ModelCheckpoint.Peek(path, Kind);
        using var file = SafetensorsFile.Open(path);
        return InfoFromJson(config, path, file.Metadata.GetValueOrDefault(WordVocabulary.MetadataKey));
    }

    /// <summary>Rebuilds the model from the file and loads its weights (float32, eval mode).</summary>
    public static (DiffusionTransformer model, DenoiserInfo info) Load(string path)
    {
        var ckpt = ModelCheckpoint.Load(path, Kind);
        try
        {
            var info = InfoFromJson(ckpt.Config, path, ckpt.Extra.GetValueOrDefault(WordVocabulary.MetadataKey));
            var model = new DiffusionTransformer(info.Transformer);
            StateDict.Load(model, ckpt.Weights, path);
            model.eval();
            return (model, info);
        }
        finally
        {
            foreach (var t in ckpt.Weights.Values) t.Dispose();
        }
    }
}
