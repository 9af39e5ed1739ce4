using System.Text.Json;
using System.Text.Json.Nodes;
using LatentDiffusion.Diffusion;
using LatentDiffusion.UNets;
using static TorchSharp.torch;

namespace LatentDiffusion.Denoisers;

/// <summary>
/// Turns official CompVis LDM UNet weights into our denoiser file. The weights: a CompVis <c>.ckpt</c> (its
/// <c>state_dict</c>, of which only the <c>model.diffusion_model.*</c> tensors are taken, prefix stripped), or a plain
/// UNet state dict (.pt or safetensors). The weights do not show the architecture, so the official constructor
/// arguments come beside them (the <c>unet_config.params</c> of the model's yaml, as JSON).
/// </summary>
public static class UNetConversion
{
    /// <summary>The key prefix of the UNet inside a CompVis / Stable Diffusion checkpoint.</summary>
    public const string CompVisPrefix = "model.diffusion_model.";

    /// <summary>
    /// Reads the official constructor arguments from a JSON file: either the arguments themselves or an object with
    /// them under <c>params</c> (as <c>unet_config</c> in an LDM yaml).
    /// </summary>
    public static UNetConfig ReadOfficialConfig(string path)
    {
        if (!File.Exists(path))
            throw new LdmException($"UNet config '{path}' does not exist; pass a JSON file with the official UNetModel arguments (unet_config.params of the model's yaml).");
        JsonObject json;
        try { json = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new LdmException($"UNet config '{path}' is not a JSON object; write the UNetModel arguments as {{\"image_size\": 32, ...}}."); }
        catch (JsonException e) { throw new LdmException($"UNet config '{path}' is not valid JSON ({e.Message}); the yaml's unet_config.params must be written as JSON.", e); }
        if (json["params"] is JsonObject inner) json = inner;
        return UNetConfig.FromOfficial(json);
    }

    /// <summary>The prefix of the EMA weights in a CompVis checkpoint: LitEma stores <c>model_ema.diffusion_model</c> + the key without dots.</summary>
    public const string CompVisEmaPrefix = "model_ema.diffusion_model";

    /// <summary>Converts <paramref name="input"/> with the architecture <paramref name="config"/> into <paramref name="output"/>.</summary>
    /// <param name="input">The weights file (CompVis .ckpt, .pt state dict or safetensors).</param>
    /// <param name="config">The architecture (see <see cref="ReadOfficialConfig"/>).</param>
    /// <param name="output">The denoiser file to write.</param>
    /// <param name="storageDtype">Storage dtype of the floats (null: as read).</param>
    /// <param name="ema">Take the EMA weights of a CompVis checkpoint (<c>model_ema.*</c>) instead of <c>model.diffusion_model.*</c>.</param>
    /// <param name="diffusion">The diffusion process the model was trained with, e.g. LDM's scaled-linear schedule with the
    /// yaml's <c>linear_start</c>/<c>linear_end</c> (its learn_sigma must match the config's); null: our default (1000
    /// steps of DiT's linear schedule).</param>
    /// <returns>The config that was written.</returns>
    public static UNetConfig Convert(string input, UNetConfig config, string output, ScalarType? storageDtype = null, bool ema = false,
        DiffusionConfig? diffusion = null)
    {
        var all = IO.CheckpointImport.LoadAny(input);
        var taken = new Dictionary<string, Tensor>();
        try
        {
            using var model = new UNetModel(config);
            if (ema)
            {
                // LitEma names a buffer by the parameter's key with the dots removed; map our keys onto those names.
                if (!all.Keys.Any(k => k.StartsWith(CompVisEmaPrefix, StringComparison.Ordinal)))
                    throw new LdmException($"'{input}' has no EMA weights ({CompVisEmaPrefix}*); convert without --ema to take model.diffusion_model.*.");
                foreach (var key in model.state_dict().Keys)
                    if (all.TryGetValue(CompVisEmaPrefix + key.Replace(".", "", StringComparison.Ordinal), out var tensor)) taken[key] = tensor;
            }
            else
            {
                bool compVis = all.Keys.Any(k => k.StartsWith(CompVisPrefix, StringComparison.Ordinal));
                foreach (var (key, tensor) in all)
                {
                    if (!compVis) taken[key] = tensor;
                    else if (key.StartsWith(CompVisPrefix, StringComparison.Ordinal)) taken[key[CompVisPrefix.Length..]] = tensor;
                }
            }
            IO.StateDict.Load(model, taken, input);
            // The weights do not show the schedule they were trained with: the caller's, else our default.
            var process = diffusion?.WithExplicitSchedule() ?? new DiffusionConfig { LearnSigma = config.LearnSigma };
            var info = new DenoiserInfo(config, process, config.InChannels == 3 ? DataSpace.Pixel : DataSpace.Latent, []).Check($"'{output}'");
            DenoiserCheckpoint.Save(output, model, info, storageDtype,
                new Dictionary<string, string> { ["ldm.converted_from"] = Path.GetFileName(input) });
            return config;
        }
        finally
        {
            foreach (var t in all.Values) t.Dispose();
        }
    }
}
