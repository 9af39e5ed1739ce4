using LatentDiffusion.Diffusion;
using LatentDiffusion.Text;
using LatentDiffusion.Transformers;
using LatentDiffusion.UNets;
using Xunit;

namespace LatentDiffusion.Tests;

/// <summary>
/// <see cref="ModelCost"/>: parameters counted from the config equal the built network's for every block type and a
/// spread of UNet options; forward FLOPs match counts written out by hand for a tiny model of each backbone and DiT's
/// published Gflops for its presets.
/// </summary>
public class ModelCostTests
{
    static long BuiltParameters(IBackboneConfig config)
    {
        using var network = config.Build();
        return network.parameters().Sum(p => p.numel());
    }

    static readonly TextConditionConfig Text = new() { VocabSize = 23, MaxTokens = 5 };

    /// <summary>Small Transformers of every block type and option that changes the layers.</summary>
    static TransformerConfig Transformer(string name)
    {
        var cfg = new TransformerConfig { InputSize = 8, PatchSize = 2, InChannels = 4, HiddenSize = 32, Depth = 3, NumHeads = 2, NumClasses = 10 };
        var parts = name.Split('+');
        cfg = cfg with
        {
            Block = parts[0] switch
            {
                "in_context" => BlockType.InContext, "adaln_zero" => BlockType.AdaLnZero,
                "cross_attention" => BlockType.CrossAttention, "joint_attention" => BlockType.JointAttention,
                _ => throw new ArgumentException(parts[0]),
            },
        };
        foreach (var option in parts.Skip(1))
            cfg = option switch
            {
                "text" => cfg with { Text = Text, ClassDropoutProb = 0 },
                "text_encoder" => cfg with { Text = Text with { EncoderLayers = 2 }, ClassDropoutProb = 0 },
                "fixed_sigma" => cfg with { LearnSigma = false },
                "long_skips" => cfg with { LongSkips = true },
                "depth4" => cfg with { Depth = 4 },
                "learned_pos" => cfg with { LearnedPosEmbed = true },
                "no_null_class" => cfg with { ClassDropoutProb = 0 },
                "unconditional" => cfg with { NumClasses = 0 },
                "mlp_ratio3" => cfg with { MlpRatio = 3 },
                _ => throw new ArgumentException(option),
            };
        return cfg.Validate();
    }

    [Theory]
    [InlineData("in_context")]
    [InlineData("in_context+text")]
    [InlineData("in_context+fixed_sigma")]
    [InlineData("in_context+long_skips")]
    [InlineData("in_context+long_skips+depth4")]
    [InlineData("in_context+long_skips+text")]
    [InlineData("in_context+text_encoder")]
    [InlineData("cross_attention+text_encoder")]
    [InlineData("in_context+learned_pos")]
    [InlineData("in_context+no_null_class")]
    [InlineData("in_context+unconditional")]
    [InlineData("in_context+mlp_ratio3")]
    [InlineData("adaln_zero")]
    [InlineData("adaln_zero+text")]
    [InlineData("adaln_zero+fixed_sigma")]
    [InlineData("cross_attention")]
    [InlineData("cross_attention+text")]
    [InlineData("cross_attention+fixed_sigma")]
    [InlineData("joint_attention")]
    [InlineData("joint_attention+text")]
    [InlineData("joint_attention+fixed_sigma+depth4")]
    public void TransformerParameters_EqualTheBuiltNetwork(string variant)
    {
        var cfg = Transformer(variant);
        Assert.Equal(BuiltParameters(cfg), ModelCost.Of(cfg).Parameters);
    }

    /// <summary>Small UNets covering every option that changes the layers.</summary>
    static UNetConfig UNet(string name) => name switch
    {
        "class" => TinyUNets.Config(),
        "class_fixed_sigma_no_null" => TinyUNets.Config(learnSigma: false) with { ClassDropoutProb = 0 },
        "unconditional" => TinyUNets.Config(numClasses: null),
        "text" => TinyUNets.TextConfig(),
        "text_depth2_heads" => TinyUNets.TextConfig() with { TransformerDepth = 2, NumHeads = 4, NumHeadChannels = -1 },
        "text_encoder" => TinyUNets.TextConfig() is var u ? u with { Text = u.Text! with { EncoderLayers = 1 } } : null!,
        "context_without_text" => TinyUNets.Config(numClasses: null) with { UseSpatialTransformer = true, ContextDim = 24 },
        "scale_shift" => TinyUNets.Config() with { UseScaleShiftNorm = true },
        "resblock_updown" => TinyUNets.Config() with { ResblockUpdown = true },
        "head_channels" => TinyUNets.Config() with { NumHeads = -1, NumHeadChannels = 16 },
        "three_levels" => TinyUNets.Config(size: 16) with
        {
            ChannelMult = [1, 2, 2], NumResBlocks = 2, AttentionResolutions = [1, 4], UseScaleShiftNorm = true, ResblockUpdown = true,
        },
        "middle_attention_only" => TinyUNets.Config() with { AttentionResolutions = [] },
        _ => throw new ArgumentException(name),
    };

    [Theory]
    [InlineData("class")]
    [InlineData("class_fixed_sigma_no_null")]
    [InlineData("unconditional")]
    [InlineData("text")]
    [InlineData("text_depth2_heads")]
    [InlineData("text_encoder")]
    [InlineData("context_without_text")]
    [InlineData("scale_shift")]
    [InlineData("resblock_updown")]
    [InlineData("head_channels")]
    [InlineData("three_levels")]
    [InlineData("middle_attention_only")]
    public void UNetParameters_EqualTheBuiltNetwork(string variant)
    {
        var cfg = UNet(variant).Validate();
        Assert.Equal(BuiltParameters(cfg), ModelCost.Of(cfg).Parameters);
    }

    /// <summary>The preset sizes recorded in docs/transformer.md and docs/unet.md (measured there by building the networks).</summary>
    [Fact]
    public void PresetParameters_MatchTheCountsInTheDocs()
    {
        Assert.Equal(22_043_168, ModelCost.Of(TransformerConfig.FromPreset("S/2", 32, 4, 1000)).Parameters);
        Assert.Equal(32_963_360, ModelCost.Of(TransformerConfig.FromPreset("S/2", 32, 4, 1000, BlockType.AdaLnZero)).Parameters);
        Assert.Equal(62_817_376, ModelCost.Of(TransformerConfig.FromPreset("S/2", 32, 4, 1000, BlockType.JointAttention)).Parameters);
        Assert.Equal(86_848_544, ModelCost.Of(TransformerConfig.FromPreset("B/2", 32, 4, 1000)).Parameters);
        Assert.Equal(21_255_880, ModelCost.Of(UNetPresets.Create("UNet-S", 32, 4, 1000)).Parameters);
        Assert.Equal(84_397_448, ModelCost.Of(UNetPresets.Create("UNet-B", 32, 4, 1000)).Parameters);
    }

    [Fact]
    public void TinyInContextTransformer_ForwardFlopsCountedByHand()
    {
        // TinyModels.Config(): 8×8×3 input, patch 4, hidden D = 32, depth 2, 2 heads, MLP 4·32 = 128, 12 classes,
        // learned sigma (6 output channels). Patches T = (8/4)² = 4; sequence S = 1 time + 1 class + 4 patches = 6.
        // 2 FLOPs per multiply-add.
        long patchEmbed = 2 * 4 * 32 * (3 * 4 * 4);       // T · D · (C·p·p)                     =  12,288
        long timestep = 2 * (256 * 32 + 32 * 32);          // Linear(256→32) + Linear(32→32), once = 18,432
        long qkv = 2 * 6 * 32 * 96;                        // S · D · 3D                          =  36,864
        long attention = 2 * (2 * 6 * 6 * 32);             // QKᵀ and AV: S · S · D each          =   4,608
        long proj = 2 * 6 * 32 * 32;                       // S · D · D                           =  12,288
        long mlp = 2 * (2 * 6 * 32 * 128);                 // fc1 and fc2: S · D · 4D each        =  98,304
        long block = qkv + attention + proj + mlp;         //                                     = 152,064
        long final = 2 * 4 * 32 * (4 * 4 * 6);             // patch tokens only: T · D · (p·p·6)  =  24,576
        long total = patchEmbed + timestep + 2 * block + final;
        Assert.Equal(359_424, total);

        var cost = ModelCost.Of(TinyModels.Config());
        Assert.Equal(total, cost.ForwardFlops);
        Assert.Equal(2 * attention, cost.AttentionFlops);
        Assert.Equal(3.0 * total, cost.TrainingFlopsPerImage);
    }

    [Fact]
    public void TinyUNet_ForwardFlopsCountedByHand()
    {
        // TinyUNets.Config(): 8×8×3 input, model_channels 32, channel_mult [1, 2] (32 then 64 channels), one ResBlock
        // per level, self-attention at 1/2 (the 4×4 level), 2 heads, time embedding E = 4·32 = 128, learned sigma (6 out).
        // A k×k conv is 2 · pixels · out · in · k²; a ResBlock is conv3 (in→out), Linear(E→out) once, conv3 (out→out),
        // plus a 1×1 skip conv when in ≠ out. Attention on T = 16 pixels of 64 channels:
        // qkv 2·16·64·192 = 393,216; QKᵀ and AV 2·(2·16·16·64) = 65,536; proj 2·16·64·64 = 131,072.
        long attention = 393_216 + 65_536 + 131_072;                               //   589,824
        long timeEmbed = 2 * (32 * 128 + 128 * 128);                               //    40,960
        long stem = 2 * 64 * 32 * 3 * 9;                                           //   110,592 (8×8, 3→32)
        // Down, level 0 at 8×8: ResBlock 32→32, then the stride-2 conv to 4×4.
        long down0 = 2 * 64 * 32 * 32 * 9 + 2 * 128 * 32 + 2 * 64 * 32 * 32 * 9;  // 2,367,488
        long downsample = 2 * 16 * 32 * 32 * 9;                                    //   294,912
        // Down, level 1 at 4×4: ResBlock 32→64 (with skip conv), attention.
        long down1 = 2 * 16 * 64 * 32 * 9 + 2 * 128 * 64 + 2 * 16 * 64 * 64 * 9 + 2 * 16 * 32 * 64;   // 1,851,392
        // Middle at 4×4: ResBlock 64→64, attention, ResBlock 64→64.
        long res64 = 2 * 16 * 64 * 64 * 9 + 2 * 128 * 64 + 2 * 16 * 64 * 64 * 9;  // 2,375,680
        long middle = res64 + attention + res64;                                   // 5,341,184
        // Up, level 1 at 4×4: the skips are popped in reverse: 64 (down1), 32 (downsample).
        long up1a = 2 * 16 * 64 * 128 * 9 + 2 * 128 * 64 + 2 * 16 * 64 * 64 * 9 + 2 * 16 * 128 * 64;  // [64+64]→64: 3,817,472
        long up1b = 2 * 16 * 64 * 96 * 9 + 2 * 128 * 64 + 2 * 16 * 64 * 64 * 9 + 2 * 16 * 96 * 64;    // [64+32]→64: 3,162,112
        long upsample = 2 * 64 * 64 * 64 * 9;                                      // 4,718,592 (conv at 8×8 after nearest ×2)
        // Up, level 0 at 8×8: skips 32 (down0), 32 (stem).
        long up0a = 2 * 64 * 32 * 96 * 9 + 2 * 128 * 32 + 2 * 64 * 32 * 32 * 9 + 2 * 64 * 96 * 32;    // [64+32]→32: 5,120,000
        long up0b = 2 * 64 * 32 * 64 * 9 + 2 * 128 * 32 + 2 * 64 * 32 * 32 * 9 + 2 * 64 * 64 * 32;    // [32+32]→32: 3,809,280
        long output = 2 * 64 * 6 * 32 * 9;                                         //   221,184 (8×8, 32→6)
        long total = timeEmbed + stem + down0 + downsample + down1 + attention + middle
            + up1a + attention + up1b + attention + upsample + up0a + up0b + output;
        Assert.Equal(32_624_640, total);

        var cost = ModelCost.Of(TinyUNets.Config());
        Assert.Equal(total, cost.ForwardFlops);
        Assert.Equal(4 * 65_536, cost.AttentionFlops);   // four attention blocks: down, middle, two up
    }

    /// <summary>
    /// DiT's Table 4 (Peebles and Xie 2023) gives the Gflops of its models at 256×256 (32×32×4 latents), counted by
    /// fvcore with a multiply-add as one flop: S/2 6.06, B/2 23.01, L/2 80.71, XL/2 118.64. Ours halved must agree to
    /// within 0.1% (fvcore also counts the LayerNorms, which we leave out; ours halved: 6.056, 23.005, 80.698, 118.621).
    /// </summary>
    [Theory]
    [InlineData("S/2", 6.06)]
    [InlineData("B/2", 23.01)]
    [InlineData("L/2", 80.71)]
    [InlineData("XL/2", 118.64)]
    public void AdaLnZeroPresets_AgreeWithDiTsPublishedGflops(string preset, double ditGflops)
    {
        var cost = ModelCost.Of(TransformerConfig.FromPreset(preset, 32, 4, 1000, BlockType.AdaLnZero));
        Assert.InRange(cost.ForwardFlops / 2 / 1e9, ditGflops * 0.999, ditGflops * 1.001);
    }

    [Fact]
    public void TextModels_CountTheirFullCaptionLength()
    {
        // In-context: every extra caption position is one more token in every block's attention.
        var shortText = Transformer("in_context+text");
        var longText = shortText with { Text = Text with { MaxTokens = Text.MaxTokens + 1 } };
        Assert.True(ModelCost.Of(longText).ForwardFlops > ModelCost.Of(shortText).ForwardFlops);
        // A caption encoder adds, per layer on the L = 5 positions at d = 32: qkv 2·L·d·3d, attention 4·L·L·d,
        // proj 2·L·d·d, MLP 2·2·L·d·4d (by hand: 30 720 + 3 200 + 10 240 + 81 920 = 126 080).
        var encoded = Transformer("in_context+text_encoder");
        Assert.Equal(2 * 126_080.0, ModelCost.Of(encoded).ForwardFlops - ModelCost.Of(shortText).ForwardFlops);
        // A UNet fed a context directly is counted with 77 tokens unless told otherwise.
        var context = UNet("context_without_text");
        Assert.Equal(UNetCost.Of(context, UNetCost.DefaultContextTokens), ModelCost.Of(context));
        Assert.True(UNetCost.Of(context, 10).ForwardFlops < ModelCost.Of(context).ForwardFlops);
    }

    [Fact]
    public void Metadata_RoundTripsAndOldFilesHaveNone()
    {
        var cost = ModelCost.Of(TinyModels.Config());
        var meta = cost.ToMetadata();
        Assert.Equal("359424", meta[ModelCost.ForwardFlopsKey]);
        Assert.Equal(cost.Parameters.ToString(System.Globalization.CultureInfo.InvariantCulture), meta[ModelCost.ParametersKey]);
        Assert.Equal(new ModelCost(cost.Parameters, cost.ForwardFlops), ModelCost.FromMetadata(meta));
        Assert.Null(ModelCost.FromMetadata(new Dictionary<string, string>()));
        Assert.Null(ModelCost.FromMetadata(new Dictionary<string, string> { [ModelCost.ParametersKey] = "x", [ModelCost.ForwardFlopsKey] = "1" }));
    }
}
