using System.Text.Json;
using System.Text.Json.Nodes;
using LatentDiffusion.IO;

namespace LatentDiffusion.Autoencoders;

/// <summary>
/// Architecture of the KL autoencoder, with the field names of CompVis' <c>ddconfig</c> plus <c>embed_dim</c>
/// (serialized in snake_case: <c>ch</c>, <c>ch_mult</c>, <c>num_res_blocks</c>, ...), so the JSON of an LDM yaml's
/// <c>first_stage_config.params.ddconfig</c> reads unchanged.
/// </summary>
public sealed record AutoencoderConfig
{
    /// <summary>Base channel width; level i has ch · ch_mult[i] channels.</summary>
    public int Ch { get; init; } = 128;
    /// <summary>Width multiplier of each resolution level; the number of levels sets the down-sampling factor.</summary>
    public int[] ChMult { get; init; } = [1, 2, 4, 4];
    /// <summary>ResNet blocks per level (the decoder has one more per level, as CompVis).</summary>
    public int NumResBlocks { get; init; } = 2;
    /// <summary>Spatial sizes (of the feature maps) at which the down/up levels get self-attention; the middle always has one.</summary>
    public int[] AttnResolutions { get; init; } = [];
    /// <summary>Channels of the encoder output (×2 with <see cref="DoubleZ"/>) and of the decoder input.</summary>
    public int ZChannels { get; init; } = 4;
    /// <summary>Channels of the latent after quant_conv (the posterior's mean/std channels).</summary>
    public int EmbedDim { get; init; } = 4;
    /// <summary>Channels of the input images (3 RGB, 1 gray).</summary>
    public int InChannels { get; init; } = 3;
    /// <summary>Channels of the decoded images.</summary>
    public int OutCh { get; init; } = 3;
    /// <summary>Nominal image size; only decides which levels get attention (and the latent size reported).</summary>
    public int Resolution { get; init; } = 256;
    /// <summary>The encoder outputs mean and log-variance (2·z_channels), as a KL autoencoder needs.</summary>
    public bool DoubleZ { get; init; } = true;
    /// <summary>Dropout inside the ResNet blocks, in [0, 1).</summary>
    public double Dropout { get; init; } = 0.0;

    /// <summary>Spatial down-sampling factor f = 2^(levels−1).</summary>
    public int DownsampleFactor => 1 << (ChMult.Length - 1);

    /// <summary>Latent side for a <see cref="Resolution"/>-sized image.</summary>
    public int LatentResolution => Resolution / DownsampleFactor;

    /// <summary>Stable Diffusion's f=8 autoencoder (kl-f8, sd-vae-ft-ema/mse): 256×256×3 → 32×32×4.</summary>
    public static AutoencoderConfig Sd => new()
    {
        Ch = 128, ChMult = [1, 2, 4, 4], NumResBlocks = 2, AttnResolutions = [], ZChannels = 4, EmbedDim = 4,
        InChannels = 3, OutCh = 3, Resolution = 256, DoubleZ = true, Dropout = 0.0,
    };

    /// <summary>Small f=4 autoencoder for 32×32 RGB data (the shapes set, CIFAR-sized): 32×32×3 → 8×8×4.</summary>
    public static AutoencoderConfig F4Rgb32 => new()
    {
        Ch = 64, ChMult = [1, 2, 2], NumResBlocks = 1, AttnResolutions = [], ZChannels = 4, EmbedDim = 4,
        InChannels = 3, OutCh = 3, Resolution = 32, DoubleZ = true, Dropout = 0.0,
    };

    /// <summary>Small f=4 autoencoder for 28×28 grey data (Fashion-MNIST): 28×28×1 → 7×7×4.</summary>
    public static AutoencoderConfig F4Gray28 => new()
    {
        Ch = 64, ChMult = [1, 2, 2], NumResBlocks = 1, AttnResolutions = [], ZChannels = 4, EmbedDim = 4,
        InChannels = 1, OutCh = 1, Resolution = 28, DoubleZ = true, Dropout = 0.0,
    };

    /// <summary>
    /// Half-width variants (ch 32, about 0.95 M parameters, a quarter of the convolution work) of the two presets
    /// above: what a CPU trains in minutes, enough for flat-coloured shapes and Fashion-MNIST; the shipped models use them.
    /// </summary>
    public static AutoencoderConfig F4Rgb32Small => F4Rgb32 with { Ch = 32 };
    /// <summary>Half-width <see cref="F4Gray28"/> (ch 32).</summary>
    public static AutoencoderConfig F4Gray28Small => F4Gray28 with { Ch = 32 };

    /// <summary>
    /// f=2 autoencoder for 28×28 grey data (28×28×1 → 14×14×4, ch 32, 0.66 M parameters): the Fashion-MNIST model's. A
    /// 7×7 latent (f=4) keeps too little of the textures (its reconstructions alone were 9× the data's own classifier-FID
    /// floor, this one's a third of it), as LDM found for strong down-sampling; 2×2 latent patches keep 49 tokens.
    /// </summary>
    public static AutoencoderConfig F2Gray28Small => F4Gray28Small with { ChMult = [1, 2] };

    /// <summary>The preset names <see cref="FromPreset"/> knows.</summary>
    public static IReadOnlyList<string> PresetNames { get; } = ["sd", "f4-32", "f4-28", "f4-32-small", "f4-28-small", "f2-28-small"];

    /// <summary>The config of a preset name (<see cref="PresetNames"/>; <c>kl-f8</c> is an alias of <c>sd</c>).</summary>
    public static AutoencoderConfig FromPreset(string name) => name.ToLowerInvariant() switch
    {
        "sd" or "kl-f8" => Sd,
        "f4-32" => F4Rgb32,
        "f4-28" => F4Gray28,
        "f4-32-small" => F4Rgb32Small,
        "f4-28-small" => F4Gray28Small,
        "f2-28-small" => F2Gray28Small,
        _ => throw new LdmException($"unknown autoencoder preset '{name}'; use one of {string.Join(", ", PresetNames)} or a JSON config file."),
    };

    /// <summary>From a CompVis <c>ddconfig</c> object (extra keys such as <c>attn_type</c> ignored) and <c>embed_dim</c>.</summary>
    public static AutoencoderConfig FromCompVis(JsonObject ddconfig, int embedDim)
    {
        var c = FromJson(ddconfig, requireEmbedDim: false) with { EmbedDim = embedDim };
        c.Validate();
        return c;
    }

    /// <summary>
    /// From JSON: either our own form (the ddconfig fields plus <c>embed_dim</c>) or the form
    /// <c>{"ddconfig": {...}, "embed_dim": n}</c> of CompVis' AutoencoderKL arguments.
    /// </summary>
    public static AutoencoderConfig FromJson(JsonObject json) => FromJson(json, requireEmbedDim: true);

    /// <summary><see cref="FromJson(JsonObject)"/> with <paramref name="source"/> (a file) named in its errors.</summary>
    public static AutoencoderConfig FromJson(JsonObject json, string source) => FromJson(json, requireEmbedDim: true, source);

    /// <summary>
    /// The keys our own form may hold: the fields, and the derived <c>downsample_factor</c> and <c>latent_resolution</c>
    /// that <see cref="ToJson"/> writes too (informative; recomputed, never read).
    /// </summary>
    public static IReadOnlyList<string> Keys { get; } = ConfigKeys.Of(typeof(AutoencoderConfig), ModelCheckpoint.JsonOptions);

    static AutoencoderConfig FromJson(JsonObject json, bool requireEmbedDim, string? source = null)
    {
        if (json["ddconfig"] is JsonObject dd)
        {
            int embed = json["embed_dim"] is JsonNode e ? ReadInt(e, "embed_dim") : throw new LdmException("the autoencoder config has a ddconfig but no embed_dim; add \"embed_dim\" beside \"ddconfig\".");
            return FromCompVis(dd, embed);
        }
        // Our own form is strict: a misspelled key would silently take its default. A CompVis ddconfig (requireEmbedDim
        // false, from FromCompVis) keeps the keys of LDM's yamls that this model does not use (attn_type, ...).
        if (requireEmbedDim)
            ConfigKeys.RequireKnown(json, Keys, source is null ? "the autoencoder config" : $"the autoencoder config of '{source}'");
        var d = new AutoencoderConfig();
        try
        {
            var c = new AutoencoderConfig
            {
                Ch = Required(json, "ch", n => ReadInt(n, "ch")),
                ChMult = Required(json, "ch_mult", n => n.AsArray().Select(x => ReadInt(x!, "ch_mult")).ToArray()),
                NumResBlocks = Required(json, "num_res_blocks", n => ReadInt(n, "num_res_blocks")),
                AttnResolutions = json["attn_resolutions"] is JsonArray a ? a.Select(x => ReadInt(x!, "attn_resolutions")).ToArray() : [],
                ZChannels = Required(json, "z_channels", n => ReadInt(n, "z_channels")),
                EmbedDim = json["embed_dim"] is JsonNode e2 ? ReadInt(e2, "embed_dim")
                    : requireEmbedDim ? throw new LdmException("the autoencoder config lacks \"embed_dim\"; add it (4 for Stable Diffusion's autoencoder).") : 0,
                InChannels = json["in_channels"] is JsonNode i ? ReadInt(i, "in_channels") : d.InChannels,
                OutCh = json["out_ch"] is JsonNode o ? ReadInt(o, "out_ch") : d.OutCh,
                Resolution = Required(json, "resolution", n => ReadInt(n, "resolution")),
                DoubleZ = json["double_z"] is JsonNode z ? z.GetValue<bool>() : true,
                Dropout = json["dropout"] is JsonNode p ? ReadDouble(p) : 0.0,
            };
            if (requireEmbedDim) c.Validate();
            return c;
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or JsonException)
        {
            throw new LdmException($"the autoencoder config is malformed ({e.Message}); give numbers for ch, num_res_blocks, z_channels, resolution, lists for ch_mult and attn_resolutions.");
        }
    }

    static T Required<T>(JsonObject json, string key, Func<JsonNode, T> read) =>
        json[key] is JsonNode n ? read(n) : throw new LdmException($"the autoencoder config lacks \"{key}\"; add it (see the 'sd' preset for an example).");

    /// <summary>A number whether the node was parsed from text or built in code (a JsonValue holding an int does not
    /// convert to double through GetValue).</summary>
    static double ReadDouble(JsonNode n) =>
        n is JsonValue v && v.TryGetValue(out int i) ? i : n is JsonValue l && l.TryGetValue(out long j) ? j : n.GetValue<double>();

    static int ReadInt(JsonNode n, string key)
    {
        double v = ReadDouble(n);
        if (v != Math.Floor(v)) throw new LdmException($"autoencoder config field \"{key}\" must be a whole number, got {v}.");
        return (int)v;
    }

    /// <summary>Reads a JSON config file (our form or the CompVis form).</summary>
    public static AutoencoderConfig Load(string path)
    {
        string text;
        try { text = File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new LdmException($"cannot read the autoencoder config '{path}': {e.Message}; check the path.");
        }
        JsonObject json;
        try { json = JsonNode.Parse(text) as JsonObject ?? throw new JsonException("not a JSON object"); }
        catch (JsonException e) { throw new LdmException($"'{path}' is not a JSON autoencoder config ({e.Message.Split('\n')[0]}); fix the file or use a preset ({string.Join(", ", PresetNames)})."); }
        return FromJson(json, path);
    }

    /// <summary>A preset name or the path of a JSON config file.</summary>
    public static AutoencoderConfig FromPresetOrFile(string presetOrPath) =>
        PresetNames.Contains(presetOrPath.ToLowerInvariant()) || presetOrPath.Equals("kl-f8", StringComparison.OrdinalIgnoreCase)
            ? FromPreset(presetOrPath)
            : File.Exists(presetOrPath) ? Load(presetOrPath)
            : throw new LdmException($"'{presetOrPath}' is neither an autoencoder preset ({string.Join(", ", PresetNames)}) nor an existing JSON config file; pass one of them.");

    /// <summary>The config as a JSON object with snake_case keys (what checkpoints store and <see cref="FromJson(JsonObject)"/> reads).</summary>
    public JsonObject ToJson() => JsonSerializer.SerializeToNode(this, ModelCheckpoint.JsonOptions)!.AsObject();

    /// <summary>Checks that the sizes make a buildable model; throws <see cref="LdmException"/> naming the bad field.</summary>
    public void Validate()
    {
        static LdmException Bad(string what) => new($"invalid autoencoder config: {what}.");
        if (Ch <= 0) throw Bad($"ch must be positive, got {Ch}");
        if (ChMult is null || ChMult.Length == 0) throw Bad("ch_mult must list at least one level, e.g. [1, 2, 4, 4]");
        if (ChMult.Any(m => m <= 0)) throw Bad($"ch_mult entries must be positive, got [{string.Join(", ", ChMult)}]");
        // Every GroupNorm has 32 groups, so every width must divide by 32.
        foreach (int w in ChMult.Select(m => m * Ch).Prepend(Ch))
            if (w % 32 != 0) throw Bad($"channel width {w} (ch × ch_mult) is not a multiple of 32, which GroupNorm(32) needs; choose ch and ch_mult so that every ch·mult divides by 32");
        if (NumResBlocks <= 0) throw Bad($"num_res_blocks must be at least 1, got {NumResBlocks}");
        if (ZChannels <= 0) throw Bad($"z_channels must be positive, got {ZChannels}");
        if (EmbedDim <= 0) throw Bad($"embed_dim must be positive, got {EmbedDim}");
        if (InChannels <= 0 || OutCh <= 0) throw Bad($"in_channels and out_ch must be positive, got {InChannels} and {OutCh}");
        if (Resolution <= 0) throw Bad($"resolution must be positive, got {Resolution}");
        if (Resolution % DownsampleFactor != 0)
            throw Bad($"resolution {Resolution} is not divisible by the down-sampling factor {DownsampleFactor} (2^(len(ch_mult)−1)), so decode(encode(x)) would change the size; use fewer levels or another resolution");
        if (Dropout < 0 || Dropout >= 1) throw Bad($"dropout must be in [0, 1), got {Dropout}");
        if (AttnResolutions is null) throw Bad("attn_resolutions must be a list (may be empty)");
    }
}
