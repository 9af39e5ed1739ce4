using LatentDiffusion.Text;

namespace LatentDiffusion.UNets;

/// <summary>
/// Small LDM UNet sizes meant to sit beside the Transformer presets: <c>UNet-S</c> has about the parameters of the
/// Transformer preset S/2 and <c>UNet-B</c> about those of B/2 on the same input (a 32×32×4 latent, 1000 classes,
/// learned sigma; measured in docs/unet.md). All use 32-channel attention heads and residual blocks as LDM.
/// </summary>
public static class UNetPresets
{
    static readonly (string name, int modelChannels, int[] channelMult, int numResBlocks, int[] attentionResolutions, string sizedLike)[] Sizes =
    [
        ("UNet-S", 64, [1, 2, 4], 3, [2, 4], "S/2"),
        ("UNet-B", 128, [1, 2, 4], 3, [2, 4], "B/2"),
    ];

    /// <summary>Channels per attention head in every preset.</summary>
    public const int HeadChannels = 32;

    /// <summary>All preset names: UNet-S, UNet-B.</summary>
    public static IReadOnlyList<string> Names { get; } = Sizes.Select(s => s.name).ToList();

    /// <summary>(model_channels, channel_mult, num_res_blocks, attention_resolutions) of a preset (the <c>UNet-</c> prefix
    /// and case are optional); unknown names throw <see cref="LdmException"/>.</summary>
    public static (int modelChannels, int[] channelMult, int numResBlocks, int[] attentionResolutions) Get(string name)
    {
        var s = Find(name);
        return (s.modelChannels, [.. s.channelMult], s.numResBlocks, [.. s.attentionResolutions]);
    }

    /// <summary>The Transformer preset a UNet preset is sized against (<c>UNet-S</c> → <c>S/2</c>, <c>UNet-B</c> → <c>B/2</c>),
    /// for comparisons on the same input; unknown names throw <see cref="LdmException"/>.</summary>
    public static string SizedLike(string name) => Find(name).sizedLike;

    static (string name, int modelChannels, int[] channelMult, int numResBlocks, int[] attentionResolutions, string sizedLike) Find(string name)
    {
        string key = (name ?? "").Trim();
        if (key.StartsWith("UNet-", StringComparison.OrdinalIgnoreCase) || key.StartsWith("UNet/", StringComparison.OrdinalIgnoreCase)) key = key[5..];
        foreach (var s in Sizes)
            if (string.Equals(s.name[5..], key, StringComparison.OrdinalIgnoreCase)) return s;
        throw new LdmException($"unknown UNet preset '{name}'; use one of {string.Join(", ", Names)}.");
    }

    /// <summary>
    /// A UNet of a preset for an input grid: a class model (<paramref name="numClasses"/> &gt; 0, null class when
    /// <paramref name="classDropoutProb"/> &gt; 0), or with <paramref name="text"/> a text model whose caption tokens
    /// (width model_channels) are the cross-attention context of SpatialTransformers; learned sigma doubles the output.
    /// </summary>
    public static UNetConfig Create(string name, int inputSize, int inChannels, int numClasses, bool learnSigma = true,
        TextConditionConfig? text = null, double classDropoutProb = 0.1)
    {
        var (mc, mult, nrb, attn) = Get(name);
        return new UNetConfig
        {
            ImageSize = inputSize, InChannels = inChannels, OutChannels = learnSigma ? 2 * inChannels : inChannels,
            ModelChannels = mc, ChannelMult = mult, NumResBlocks = nrb, AttentionResolutions = attn,
            NumHeads = -1, NumHeadChannels = HeadChannels,
            NumClassesOrNull = text is null && numClasses > 0 ? numClasses : null,
            ClassDropoutProb = text is null ? classDropoutProb : 0.0,
            Text = text,
            UseSpatialTransformer = text is not null,
            ContextDim = text is null ? null : mc,
        };
    }
}
