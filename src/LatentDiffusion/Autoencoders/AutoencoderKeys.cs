using System.Text.RegularExpressions;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Autoencoders;

/// <summary>
/// Brings the autoencoder state dicts found in the field onto our (CompVis) key names:
/// diffusers <c>AutoencoderKL</c> (<c>diffusion_pytorch_model.safetensors</c> of sd-vae-ft-ema/mse),
/// full LDM / Stable Diffusion checkpoints (<c>first_stage_model.*</c>), and CompVis autoencoder checkpoints
/// (which also carry the training loss' <c>loss.*</c> weights: LPIPS and discriminator).
/// </summary>
internal static partial class AutoencoderKeys
{
    const string FirstStagePrefix = "first_stage_model.";

    /// <summary>Returns a dict under CompVis names, whatever naming the input uses. Tensors are shared, not copied
    /// (diffusers attention weights are reshaped views).</summary>
    public static Dictionary<string, Tensor> ToCompVis(IReadOnlyDictionary<string, Tensor> dict)
    {
        var d = StripFirstStage(dict);
        return IsDiffusersNaming(d.Keys) ? FromDiffusers(d) : d;
    }

    /// <summary>
    /// Keeps the <c>first_stage_model.*</c> entries of a full LDM/SD checkpoint without the prefix; for a dict of the
    /// autoencoder alone, drops the training-loss entries (<c>loss.*</c>) and returns the rest.
    /// </summary>
    public static Dictionary<string, Tensor> StripFirstStage(IReadOnlyDictionary<string, Tensor> dict)
    {
        if (dict.Keys.Any(k => k.StartsWith(FirstStagePrefix, StringComparison.Ordinal)))
            return dict.Where(kv => kv.Key.StartsWith(FirstStagePrefix, StringComparison.Ordinal))
                .ToDictionary(kv => kv.Key[FirstStagePrefix.Length..], kv => kv.Value);
        return dict.Where(kv => !kv.Key.StartsWith("loss.", StringComparison.Ordinal)).ToDictionary(kv => kv.Key, kv => kv.Value);
    }

    /// <summary>True when the keys use diffusers' naming (down_blocks / mid_block / up_blocks).</summary>
    public static bool IsDiffusersNaming(IEnumerable<string> keys) =>
        keys.Any(k => k.Contains(".down_blocks.") || k.Contains(".mid_block.") || k.Contains(".up_blocks."));

    /// <summary>Renames a diffusers AutoencoderKL state dict to CompVis names (see <see cref="MapDiffusersKey"/>).</summary>
    public static Dictionary<string, Tensor> FromDiffusers(IReadOnlyDictionary<string, Tensor> dict)
    {
        // diffusers lists the decoder's up blocks from the lowest resolution; CompVis indexes them by level.
        int upLevels = dict.Keys.Select(k => UpBlockIndex().Match(k)).Where(m => m.Success)
            .Select(m => int.Parse(m.Groups[1].Value) + 1).DefaultIfEmpty(0).Max();
        var result = new Dictionary<string, Tensor>();
        foreach (var (key, value) in dict)
        {
            string name = MapDiffusersKey(key, upLevels);
            // diffusers' attention projections are Linear (C, C); CompVis' are 1×1 convs (C, C, 1, 1).
            bool attentionWeight = AttentionProjection().IsMatch(name) && value.dim() == 2;
            var tensor = attentionWeight ? value.reshape(value.shape[0], value.shape[1], 1, 1) : value;
            if (!result.TryAdd(name, tensor))
                throw new LdmException($"two diffusers keys map to '{name}' (one is '{key}'); the checkpoint mixes namings, re-export it from diffusers.");
        }
        return result;
    }

    /// <summary>One diffusers key → its CompVis name. <paramref name="upLevels"/> = number of decoder up blocks.</summary>
    public static string MapDiffusersKey(string key, int upLevels)
    {
        string k = key;
        k = DownBlock().Replace(k, m => $"encoder.down.{m.Groups[1].Value}.");
        k = UpBlock().Replace(k, m => $"decoder.up.{upLevels - 1 - int.Parse(m.Groups[1].Value)}.");
        k = Regex.Replace(k, @"\.resnets\.(\d+)\.", ".block.$1.");
        k = Regex.Replace(k, @"\.attentions\.(\d+)\.", ".attn.$1.");
        k = k.Replace(".downsamplers.0.conv.", ".downsample.conv.").Replace(".upsamplers.0.conv.", ".upsample.conv.");
        k = k.Replace(".mid_block.block.0.", ".mid.block_1.").Replace(".mid_block.block.1.", ".mid.block_2.");
        k = k.Replace(".mid_block.attn.0.", ".mid.attn_1.");
        k = k.Replace(".conv_shortcut.", ".nin_shortcut.").Replace(".conv_norm_out.", ".norm_out.");
        // Attention sub-layers: current diffusers names and the older ones (query/key/value/proj_attn).
        k = AttentionPart().Replace(k, m => "." + m.Groups[1].Value switch
        {
            "group_norm" => "norm",
            "to_q" or "query" => "q",
            "to_k" or "key" => "k",
            "to_v" or "value" => "v",
            _ => "proj_out", // to_out.0 or proj_attn
        } + ".");
        return k;
    }

    [GeneratedRegex(@"^decoder\.up_blocks\.(\d+)\.")] private static partial Regex UpBlockIndex();
    [GeneratedRegex(@"^encoder\.down_blocks\.(\d+)\.")] private static partial Regex DownBlock();
    [GeneratedRegex(@"^decoder\.up_blocks\.(\d+)\.")] private static partial Regex UpBlock();
    [GeneratedRegex(@"\.(group_norm|to_q|to_k|to_v|to_out\.0|query|key|value|proj_attn)\.(?=(weight|bias)$)")] private static partial Regex AttentionPart();
    [GeneratedRegex(@"\.attn(_1|\.\d+)\.(q|k|v|proj_out)\.weight$")] private static partial Regex AttentionProjection();
}
