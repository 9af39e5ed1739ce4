using System.Text.Json;
using System.Text.Json.Serialization;
using LatentDiffusion.Diffusion;
using LatentDiffusion.Text;

namespace LatentDiffusion.Transformers;

/// <summary>
/// Architecture of a <see cref="DiffusionTransformer"/>. JSON names are snake_case (as the official DiT arguments),
/// so the record round-trips through checkpoint metadata.
/// </summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed record TransformerConfig : IBackboneConfig
{
    /// <summary>The backbone's name in checkpoints.</summary>
    public const string BackboneKind = "transformer";
    /// <summary>Always <see cref="BackboneKind"/>.</summary>
    [JsonIgnore] public string Kind => BackboneKind;

    /// <summary>Latent (or image) side length in pixels; inputs are input_size × input_size.</summary>
    [JsonPropertyName("input_size")] public int InputSize { get; init; } = 32;
    /// <summary>Side of the square patches that become tokens; must divide <see cref="InputSize"/>.</summary>
    [JsonPropertyName("patch_size")] public int PatchSize { get; init; } = 2;
    /// <summary>Channels of the input: the autoencoder's latent channels, or 1 / 3 for pixels.</summary>
    [JsonPropertyName("in_channels")] public int InChannels { get; init; } = 4;
    /// <summary>Token width D; must be divisible by <see cref="NumHeads"/>.</summary>
    [JsonPropertyName("hidden_size")] public int HiddenSize { get; init; } = 384;
    /// <summary>Number of Transformer blocks.</summary>
    [JsonPropertyName("depth")] public int Depth { get; init; } = 12;
    /// <summary>Attention heads per block.</summary>
    [JsonPropertyName("num_heads")] public int NumHeads { get; init; } = 6;
    /// <summary>Width of the MLP's hidden layer relative to <see cref="HiddenSize"/>.</summary>
    [JsonPropertyName("mlp_ratio")] public double MlpRatio { get; init; } = 4.0;
    /// <summary>Probability of replacing a label by the null class in training (classifier-free guidance); &gt; 0 adds the null row.</summary>
    [JsonPropertyName("class_dropout_prob")] public double ClassDropoutProb { get; init; } = 0.1;
    /// <summary>Number of classes of a class model (ids 0 … num_classes − 1); ImageNet DiT: 1000.</summary>
    [JsonPropertyName("num_classes")] public int NumClasses { get; init; } = 1000;
    /// <summary>Predict the variance too (improved DDPM): the output has 2·in_channels channels.</summary>
    [JsonPropertyName("learn_sigma")] public bool LearnSigma { get; init; } = true;
    /// <summary>How the blocks take the condition (see <see cref="BlockType"/>).</summary>
    [JsonPropertyName("block")] public BlockType Block { get; init; } = BlockType.InContext;
    /// <summary>U-ViT long skips between the first and the mirrored second half of the blocks (in-context only).</summary>
    [JsonPropertyName("long_skips")] public bool LongSkips { get; init; }
    /// <summary>Train the patch position embedding (initialised to sin-cos) instead of keeping the sin-cos table fixed.</summary>
    [JsonPropertyName("learned_pos_embed")] public bool LearnedPosEmbed { get; init; }
    /// <summary>
    /// Text conditioning (tokenizer, vocabulary size, token count, caption dropout); null = class-conditional.
    /// Omitted from the JSON of class models, so their configs (and official DiT configs) are unchanged.
    /// </summary>
    [JsonPropertyName("text"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public TextConditionConfig? Text { get; init; }

    /// <summary>Output channels: 2 · in_channels with learn_sigma, else in_channels.</summary>
    [JsonIgnore] public int OutChannels => LearnSigma ? InChannels * 2 : InChannels;
    /// <summary>Patches per side: input_size / patch_size.</summary>
    [JsonIgnore] public int GridSize => InputSize / PatchSize;
    /// <summary>Image tokens: grid_size².</summary>
    [JsonIgnore] public int NumPatches => GridSize * GridSize;
    /// <summary>Width of the MLP's hidden layer: hidden_size · mlp_ratio.</summary>
    [JsonIgnore] public int MlpHidden => (int)(HiddenSize * MlpRatio);
    /// <summary>The id of the null (unconditional) class; = num_classes.</summary>
    [JsonIgnore] public int NullClass => NumClasses;
    /// <summary><c>class</c> or <c>text</c>: what the model is conditioned on.</summary>
    [JsonIgnore] public string Condition => Text is null ? "class" : "text";
    /// <summary>The model is conditioned on captions (<see cref="Text"/> is set).</summary>
    [JsonIgnore] public bool IsTextConditional => Text is not null;
    /// <summary>Condition tokens in the in-context sequence: 1 (a class) or text.max_tokens.</summary>
    [JsonIgnore] public int ConditionTokens => Text?.MaxTokens ?? 1;
    /// <summary>Whether the model has an unconditional input for guidance (null class or empty caption).</summary>
    [JsonIgnore] public bool HasUnconditionalInput => Text is { } text ? text.DropoutProb > 0 : ClassDropoutProb > 0;

    void IBackboneConfig.Check() => Validate();
    DenoiserNetwork IBackboneConfig.Build(long seed) => new DiffusionTransformer(this, seed);
    ModelCost IBackboneConfig.Cost() => TransformerCost.Of(this);

    /// <summary>Throws <see cref="LdmException"/> with the problem and the fix if no model can be built from this config.</summary>
    public TransformerConfig Validate()
    {
        void Positive(string name, double value)
        {
            if (!(value > 0)) throw new LdmException($"transformer config: {name} is {value}, it must be positive; set {name} to a positive value.");
        }
        Positive("input_size", InputSize);
        Positive("patch_size", PatchSize);
        Positive("in_channels", InChannels);
        Positive("hidden_size", HiddenSize);
        Positive("depth", Depth);
        Positive("num_heads", NumHeads);
        Positive("mlp_ratio", MlpRatio);
        if (InputSize % PatchSize != 0)
            throw new LdmException($"transformer config: input_size {InputSize} is not divisible by patch_size {PatchSize}; pick a patch size that divides the latent size (e.g. {LargestDivisorAtMost(InputSize, PatchSize)}).");
        if (HiddenSize % NumHeads != 0)
            throw new LdmException($"transformer config: hidden_size {HiddenSize} is not divisible by num_heads {NumHeads}; use a head count that divides the width.");
        if (HiddenSize % 4 != 0)
            throw new LdmException($"transformer config: hidden_size {HiddenSize} is not a multiple of 4, which the 2-D sin-cos position embedding needs; use a width divisible by 4.");
        if (MlpHidden < 1)
            throw new LdmException($"transformer config: mlp_ratio {MlpRatio} gives an empty MLP for hidden_size {HiddenSize}; use mlp_ratio around 4.");
        if (Text is not null)
        {
            // A text model has no label table: the class settings do not apply.
            Text.Validate();
        }
        else if (ClassDropoutProb < 0 || ClassDropoutProb >= 1 || double.IsNaN(ClassDropoutProb))
            throw new LdmException($"transformer config: class_dropout_prob {ClassDropoutProb} must be in [0, 1); DiT uses 0.1.");
        else if (NumClasses < 0)
            throw new LdmException($"transformer config: num_classes {NumClasses} is negative; use the number of classes of the data (0 for unconditional with class_dropout_prob > 0).");
        else if (NumClasses == 0 && ClassDropoutProb == 0)
            throw new LdmException("transformer config: num_classes 0 with class_dropout_prob 0 leaves no label embedding at all; set class_dropout_prob > 0 (the null class is then the unconditional label).");
        if (LongSkips && Block != BlockType.InContext)
            throw new LdmException($"transformer config: long_skips work only with the in_context block, not {Block}; set long_skips false or block in_context.");
        if (LongSkips && Depth < 2)
            throw new LdmException($"transformer config: long_skips need depth >= 2 (blocks to connect), got {Depth}; raise depth or turn long_skips off.");
        return this;
    }

    static int LargestDivisorAtMost(int n, int limit)
    {
        for (int d = Math.Min(n, limit); d > 1; d--) if (n % d == 0) return d;
        return 1;
    }

    /// <summary>
    /// The official DiT constructor arguments (models.DiT(input_size, patch_size, ...)) → an adaLN-Zero config
    /// whose state dict has the official keys.
    /// </summary>
    public static TransformerConfig FromOfficialDiT(int inputSize, int patchSize, int inChannels, int hiddenSize, int depth,
        int numHeads, double mlpRatio, double classDropoutProb, int numClasses, bool learnSigma) =>
        new TransformerConfig
        {
            InputSize = inputSize, PatchSize = patchSize, InChannels = inChannels, HiddenSize = hiddenSize, Depth = depth,
            NumHeads = numHeads, MlpRatio = mlpRatio, ClassDropoutProb = classDropoutProb, NumClasses = numClasses,
            LearnSigma = learnSigma, Block = BlockType.AdaLnZero,
        }.Validate();

    /// <summary>
    /// A DiT-sized model by preset name (<c>S/2</c>, <c>B/4</c>, <c>XL/2</c>, ...; a <c>DiT-</c> prefix is allowed).
    /// </summary>
    public static TransformerConfig FromPreset(string name, int inputSize, int inChannels, int numClasses,
        BlockType block = BlockType.InContext, bool learnSigma = true, double classDropoutProb = 0.1,
        bool longSkips = false, bool learnedPosEmbed = false, int? patchSize = null)
    {
        var (depth, hidden, heads, patch) = TransformerPresets.Get(name);
        return new TransformerConfig
        {
            InputSize = inputSize, PatchSize = patchSize ?? patch, InChannels = inChannels, HiddenSize = hidden, Depth = depth,
            NumHeads = heads, MlpRatio = 4.0, ClassDropoutProb = classDropoutProb, NumClasses = numClasses,
            LearnSigma = learnSigma, Block = block, LongSkips = longSkips, LearnedPosEmbed = learnedPosEmbed,
        }.Validate();
    }

    static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = false };

    /// <summary>The config as compact snake_case JSON, as stored in checkpoints.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    /// <summary>Parses and validates a config written by <see cref="ToJson"/> (or by hand, snake_case names).</summary>
    public static TransformerConfig FromJson(string json)
    {
        TransformerConfig? config;
        try { config = JsonSerializer.Deserialize<TransformerConfig>(json, JsonOptions); }
        catch (JsonException e) { throw new LdmException($"transformer config is not valid for this model: {e.Message} (written by a newer version, or edited by hand?); fix the config text.", e); }
        return (config ?? throw new LdmException("transformer config is empty (null); write a JSON object with the model's sizes.")).Validate();
    }
}
