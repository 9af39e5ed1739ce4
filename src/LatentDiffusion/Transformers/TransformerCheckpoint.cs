using System.Text.Json.Nodes;
using LatentDiffusion.IO;
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
        ModelCheckpoint.Save(path, Kind, ToJson(info), model, storageDtype, extra);

    public static JsonObject ToJson(DenoiserInfo info) => new()
    {
        ["transformer"] = JsonNode.Parse(info.Transformer.ToJson()),
        ["diffusion"] = info.Diffusion.DeepClone(),
        ["space"] = info.Space,
        ["class_names"] = new JsonArray(info.ClassNames.Select(n => (JsonNode)JsonValue.Create(n)!).ToArray()),
    };

    public static DenoiserInfo InfoFromJson(JsonObject config, string source)
    {
        if (config["transformer"] is not JsonObject t)
            throw new LdmException($"'{source}' has no transformer config; it is not a denoiser checkpoint of ldm.");
        string space = (string?)config["space"] ?? "latent";
        if (space is not ("pixel" or "latent"))
            throw new LdmException($"'{source}' names an unknown space '{space}' (pixel or latent); re-create the checkpoint.");
        var names = config["class_names"] is JsonArray a ? a.Select(n => (string)n!).ToList() : new List<string>();
        return new DenoiserInfo(TransformerConfig.FromJson(t.ToJsonString()), config["diffusion"] as JsonObject ?? new JsonObject(), space, names);
    }

    /// <summary>Reads the config only (no weights).</summary>
    public static DenoiserInfo PeekInfo(string path) => InfoFromJson(ModelCheckpoint.Peek(path, Kind).config, path);

    /// <summary>Rebuilds the model from the file and loads its weights (float32, eval mode).</summary>
    public static (DiffusionTransformer model, DenoiserInfo info) Load(string path)
    {
        var ckpt = ModelCheckpoint.Load(path, Kind);
        try
        {
            var info = InfoFromJson(ckpt.Config, path);
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
