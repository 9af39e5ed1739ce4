using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using LatentDiffusion.Diffusion;
using LatentDiffusion.Text;

namespace LatentDiffusion.UNets;

/// <summary>
/// Architecture of a <see cref="UNetModel"/>, the UNet of CompVis latent-diffusion (<c>openaimodel.UNetModel</c>).
/// JSON names are the official constructor arguments, so an LDM config's <c>unet_config.params</c> maps onto it
/// (see <see cref="FromOfficial"/>); <c>class_dropout_prob</c> and <c>text</c> are ours.
/// </summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed record UNetConfig : IBackboneConfig
{
    /// <summary>The backbone's name in checkpoints.</summary>
    public const string BackboneKind = "unet";
    /// <summary>Always <see cref="BackboneKind"/>.</summary>
    [JsonIgnore] public string Kind => BackboneKind;

    /// <summary>
    /// Side of the (square) input in latent or image pixels: any size of at least 1. Each level after the first halves
    /// it rounding up (7 → 4 → 2), so every level keeps at least one pixel, and the way up returns to the sizes of the
    /// way down. Sizes not divisible by 2^(levels−1) are our extension: the official UNet needs them divisible
    /// (docs/unet.md, "Input sizes"); for divisible sizes the two compute the same.
    /// </summary>
    [JsonPropertyName("image_size")] public int ImageSize { get; init; } = 32;
    /// <summary>Channels of the input grid.</summary>
    [JsonPropertyName("in_channels")] public int InChannels { get; init; } = 4;
    /// <summary>Base width: the channels of the first level (a multiple of 32, for the 32-group norms).</summary>
    [JsonPropertyName("model_channels")] public int ModelChannels { get; init; } = 128;
    /// <summary>Channels of the output: in_channels, or 2·in_channels to learn the variance too.</summary>
    [JsonPropertyName("out_channels")] public int OutChannels { get; init; } = 4;
    /// <summary>Residual blocks per level on the way down (the way up has one more, which takes the skip of the downsample).</summary>
    [JsonPropertyName("num_res_blocks")] public int NumResBlocks { get; init; } = 2;
    /// <summary>Downsampling factors (1, 2, 4, ...) at which attention follows every residual block.</summary>
    [JsonPropertyName("attention_resolutions")] public int[] AttentionResolutions { get; init; } = [4, 2];
    /// <summary>Dropout probability inside the residual blocks.</summary>
    [JsonPropertyName("dropout")] public double Dropout { get; init; }
    /// <summary>Width of each level relative to model_channels; one level per entry, halving the resolution between levels.</summary>
    [JsonPropertyName("channel_mult")] public int[] ChannelMult { get; init; } = [1, 2, 4, 8];
    /// <summary>Number of classes of a class-conditional model (label embedding added to the time embedding); null: none.</summary>
    [JsonPropertyName("num_classes")] public int? NumClassesOrNull { get; init; }
    /// <summary>Attention heads per attention layer; -1 when <see cref="NumHeadChannels"/> sets the head width instead.</summary>
    [JsonPropertyName("num_heads")] public int NumHeads { get; init; } = -1;
    /// <summary>Channels per attention head (heads = channels / this); -1 to use <see cref="NumHeads"/>.</summary>
    [JsonPropertyName("num_head_channels")] public int NumHeadChannels { get; init; } = -1;
    /// <summary>FiLM conditioning: the time embedding scales and shifts the second norm instead of being added.</summary>
    [JsonPropertyName("use_scale_shift_norm")] public bool UseScaleShiftNorm { get; init; }
    /// <summary>Down- and upsample with residual blocks instead of strided / nearest convolutions.</summary>
    [JsonPropertyName("resblock_updown")] public bool ResblockUpdown { get; init; }
    /// <summary>SpatialTransformer (self- and cross-attention on a context) instead of plain self-attention blocks.</summary>
    [JsonPropertyName("use_spatial_transformer")] public bool UseSpatialTransformer { get; init; }
    /// <summary>Transformer blocks per SpatialTransformer.</summary>
    [JsonPropertyName("transformer_depth")] public int TransformerDepth { get; init; } = 1;
    /// <summary>Width of the cross-attention context (N, L, context_dim); required with the spatial transformer.</summary>
    [JsonPropertyName("context_dim")] public int? ContextDim { get; init; }
    /// <summary>The official <c>legacy</c> flag (head width rule); with head counts that divide the widths it changes nothing.</summary>
    [JsonPropertyName("legacy")] public bool Legacy { get; init; } = true;
    /// <summary>
    /// Ours: probability of replacing a label by the null class in training (classifier-free guidance); &gt; 0 adds the
    /// null row to <c>label_emb</c> (num_classes + 1 rows). Official class UNets have no null row: 0.
    /// </summary>
    [JsonPropertyName("class_dropout_prob")] public double ClassDropoutProb { get; init; } = 0.1;
    /// <summary>
    /// Ours: text conditioning. The caption's token embeddings (width context_dim) are the cross-attention context.
    /// Null for class models and for models fed a context directly.
    /// </summary>
    [JsonPropertyName("text"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public TextConditionConfig? Text { get; init; }

    /// <summary>Same as <see cref="ImageSize"/>.</summary>
    [JsonIgnore] public int InputSize => ImageSize;
    /// <summary>The output has 2·in_channels channels (noise and variance interpolation).</summary>
    [JsonIgnore] public bool LearnSigma => OutChannels == 2 * InChannels;
    /// <summary>num_classes, or 0 for models without labels.</summary>
    [JsonIgnore] public int NumClasses => NumClassesOrNull ?? 0;
    /// <summary>Width of the time (and label) embedding: 4·model_channels.</summary>
    [JsonIgnore] public int TimeEmbedDim => 4 * ModelChannels;
    /// <summary>The id of the null (unconditional) class, = num_classes; exists when class_dropout_prob &gt; 0.</summary>
    [JsonIgnore] public int NullClass => NumClasses;
    /// <summary>Rows of <c>label_emb</c>: num_classes, plus the null class when class_dropout_prob &gt; 0.</summary>
    [JsonIgnore] public int LabelTableSize => NumClasses + (NumClasses > 0 && ClassDropoutProb > 0 ? 1 : 0);
    /// <summary>Whether the model has an unconditional input for guidance (null class or empty caption).</summary>
    [JsonIgnore] public bool HasUnconditionalInput => Text is { } text ? text.DropoutProb > 0 : NumClasses > 0 && ClassDropoutProb > 0;

    /// <summary>Attention heads of an attention layer at <paramref name="channels"/> channels.</summary>
    public int HeadsAt(int channels) => NumHeadChannels == -1 ? NumHeads : channels / NumHeadChannels;

    void IBackboneConfig.Check() => Validate();
    DenoiserNetwork IBackboneConfig.Build(long seed) => new UNetModel(this, seed);
    ModelCost IBackboneConfig.Cost() => UNetCost.Of(this);

    static LdmException Bad(string property, object? value, string requirement, string? hint = null) =>
        new LdmOptionException(nameof(UNetConfig), property, value, requirement, hint);

    /// <summary>
    /// Throws <see cref="LdmException"/> with the problem and the fix if no model can be built from this config.
    /// <c>image_size</c> only has to be positive: every level must keep at least one pixel, and since each halving rounds
    /// up (⌈n/2⌉) a positive size never reaches 0, at any depth. Sizes need not be divisible by 2^(levels−1) (our
    /// extension beyond the official code, see <see cref="ImageSize"/>).
    /// </summary>
    public UNetConfig Validate()
    {
        if (ImageSize < 1) throw Bad("image_size", ImageSize, "be positive", "the latent side, e.g. 32");
        if (InChannels < 1) throw Bad("in_channels", InChannels, "be positive", "the latent channels, e.g. 4");
        if (ModelChannels < 32 || ModelChannels % 32 != 0)
            throw Bad("model_channels", ModelChannels, "be a positive multiple of 32 (the norms use 32 groups)", "e.g. 64, 128, 192");
        if (OutChannels != InChannels && OutChannels != 2 * InChannels)
            throw Bad("out_channels", OutChannels, $"be in_channels ({InChannels}) or 2·in_channels ({2 * InChannels}, learned variance)");
        if (NumResBlocks < 1) throw Bad("num_res_blocks", NumResBlocks, "be at least 1", "LDM uses 2");
        if (ChannelMult is null || ChannelMult.Length == 0 || ChannelMult.Any(m => m < 1))
            throw Bad("channel_mult", ChannelMult is null ? null : $"[{string.Join(",", ChannelMult)}]", "be a non-empty list of positive multipliers", "e.g. [1, 2, 4]");
        if (ChannelMult[0] != 1)
            throw Bad("channel_mult", $"[{string.Join(",", ChannelMult)}]", "start with 1 (the official output conv takes model_channels)");
        if (AttentionResolutions is null || AttentionResolutions.Any(r => r < 1))
            throw Bad("attention_resolutions", null, "be a list of positive downsampling factors", "e.g. [4, 2] or []");
        if (Dropout < 0 || Dropout >= 1 || double.IsNaN(Dropout)) throw Bad("dropout", Dropout, "be in [0, 1)");
        if (NumHeads == -1 && NumHeadChannels == -1)
            throw Bad("num_heads", NumHeads, "be set, or num_head_channels (both are -1)", "set num_heads (e.g. 8) or num_head_channels (e.g. 32)");
        if (NumHeadChannels == -1 ? NumHeads < 1 : NumHeadChannels < 1)
            throw NumHeadChannels == -1
                ? Bad("num_heads", NumHeads, "be positive when num_head_channels is -1")
                : Bad("num_head_channels", NumHeadChannels, "be positive, or -1 to use num_heads");
        foreach (var ch in AttentionChannels())
        {
            if (NumHeadChannels == -1 && ch % NumHeads != 0)
                throw Bad("num_heads", NumHeads, $"divide the {ch} channels of an attention layer", "use a power of two");
            if (NumHeadChannels != -1 && ch % NumHeadChannels != 0)
                throw Bad("num_head_channels", NumHeadChannels, $"divide the {ch} channels of an attention layer", "use a divisor of model_channels");
        }
        if (UseSpatialTransformer && ContextDim is null && Text is null)
            throw Bad("context_dim", null, "be set with use_spatial_transformer (the width of the cross-attention context)", "e.g. the text embedding width");
        if (ContextDim is { } cd && cd < 1) throw Bad("context_dim", cd, "be positive");
        if (ContextDim is not null && !UseSpatialTransformer)
            throw Bad("use_spatial_transformer", false, "be true when context_dim is set (only the spatial transformer takes a context)");
        if (TransformerDepth < 1) throw Bad("transformer_depth", TransformerDepth, "be at least 1");
        if (NumClassesOrNull is { } nc && nc < 1)
            throw Bad("num_classes", nc, "be positive, or absent (null) for a model without labels");
        if (ClassDropoutProb < 0 || ClassDropoutProb >= 1 || double.IsNaN(ClassDropoutProb))
            throw Bad("class_dropout_prob", ClassDropoutProb, "be in [0, 1)", "0.1 is usual; 0 for official class UNets");
        if (Text is not null)
        {
            Text.Validate();
            if (NumClassesOrNull is not null)
                throw Bad("num_classes", NumClassesOrNull, "be absent for a text model (text and class labels together are not supported)");
            if (!UseSpatialTransformer)
                throw Bad("use_spatial_transformer", false, "be true for a text model (the caption enters through cross-attention)");
            if (ContextDim is null)
                throw Bad("context_dim", null, "be set for a text model: the width of the caption's token embeddings", "e.g. model_channels");
        }
        return this;
    }

    /// <summary>The channel counts at which attention layers sit (down, middle and up paths).</summary>
    IEnumerable<int> AttentionChannels()
    {
        int ds = 1;
        for (int level = 0; level < ChannelMult.Length; level++, ds *= 2)
            if (AttentionResolutions.Contains(ds)) yield return ModelChannels * ChannelMult[level];
        yield return ModelChannels * ChannelMult[^1];
    }

    static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = false };

    /// <summary>The config as compact snake_case JSON, as stored in checkpoints.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    /// <summary>Parses and validates a config written by <see cref="ToJson"/> (or by hand, snake_case names).</summary>
    public static UNetConfig FromJson(string json)
    {
        UNetConfig? config;
        try { config = JsonSerializer.Deserialize<UNetConfig>(json, JsonOptions); }
        catch (JsonException e) { throw new LdmException($"unet config is not valid: {e.Message}; fix the config text (snake_case names as the official UNetModel arguments).", e); }
        return (config ?? throw new LdmException("unet config is empty (null); write a JSON object with the model's sizes.")).Validate();
    }

    /// <summary>Official arguments without a default.</summary>
    static readonly string[] RequiredOfficial = ["image_size", "in_channels", "model_channels", "out_channels", "num_res_blocks", "attention_resolutions"];

    /// <summary>Official arguments that do not change the math of a float32 forward, dropped on import.</summary>
    static readonly string[] IgnoredOfficial = ["use_checkpoint", "use_fp16"];

    /// <summary>Official arguments we accept only at their default (the value given), as the feature is not implemented.</summary>
    static readonly (string name, JsonNode? dflt, string why)[] DefaultOnlyOfficial =
    [
        ("dims", 2, "only 2-D UNets are implemented"),
        ("conv_resample", true, "down/upsampling without convolutions is not implemented"),
        ("num_heads_upsample", -1, "a separate head count on the way up is not implemented"),
        ("use_new_attention_order", false, "only the legacy QKV attention order is implemented"),
        ("n_embed", null, "codebook-id prediction is not implemented"),
    ];

    /// <summary>
    /// The official <c>UNetModel(**params)</c> constructor arguments (as in an LDM yaml's <c>unet_config.params</c>)
    /// → a config with the official defaults for absent ones and class_dropout_prob 0 (no null class row), so the
    /// state-dict keys and shapes are the official ones. Arguments without effect on the math (use_checkpoint,
    /// use_fp16) are dropped; unimplemented features must be at their defaults.
    /// </summary>
    public static UNetConfig FromOfficial(JsonObject arguments)
    {
        var args = (JsonObject)arguments.DeepClone();
        foreach (var name in RequiredOfficial)
            if (!args.ContainsKey(name))
                throw new LdmException($"official UNet arguments lack {name}, which UNetModel requires; add it to the config (see the model's yaml, unet_config.params).");
        foreach (var name in IgnoredOfficial) args.Remove(name);
        foreach (var (name, dflt, why) in DefaultOnlyOfficial)
        {
            if (!args.TryGetPropertyValue(name, out var value)) continue;
            bool isDefault = value is null ? dflt is null : dflt is not null && JsonNode.DeepEquals(value, dflt);
            if (!isDefault)
                throw new LdmException($"official UNet argument {name} = {value?.ToJsonString() ?? "null"} is not supported: {why}; only {dflt?.ToJsonString() ?? "null"} works.");
            args.Remove(name);
        }
        // Official defaults that differ from ours.
        if (!args.ContainsKey("num_heads")) args["num_heads"] = -1;
        if (!args.ContainsKey("channel_mult")) args["channel_mult"] = new JsonArray(1, 2, 4, 8);
        if (!args.ContainsKey("class_dropout_prob")) args["class_dropout_prob"] = 0.0;
        return FromJson(args.ToJsonString());
    }
}
