using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LatentDiffusion.Autoencoders;

/// <summary>
/// One resolution level of the encoder (<c>down.i</c>) or decoder (<c>up.i</c>): residual blocks, each followed by
/// self-attention when the level's resolution is in attn_resolutions, then an optional resampler.
/// Keys: <c>block.j</c>, <c>attn.j</c>, and <c>downsample.conv</c> or <c>upsample.conv</c>.
/// </summary>
internal sealed class ResolutionLevel : nn.Module<Tensor, Tensor>
{
    readonly ModuleList<ResnetBlock> block;
    readonly ModuleList<AttnBlock> attn;
    readonly Downsample? downsample;
    readonly Upsample? upsample;

    public ResolutionLevel(IReadOnlyList<ResnetBlock> blocks, bool withAttention, Downsample? downsample, Upsample? upsample)
        : base(nameof(ResolutionLevel))
    {
        block = new ModuleList<ResnetBlock>(blocks.ToArray());
        attn = withAttention ? new ModuleList<AttnBlock>(blocks.Select(b => new AttnBlock(b.OutChannels)).ToArray()) : new ModuleList<AttnBlock>();
        this.downsample = downsample;
        this.upsample = upsample;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = x;
        for (int j = 0; j < block.Count; j++)
        {
            h = block[j].forward(h);
            if (attn.Count > 0) h = attn[j].forward(h);
        }
        if (downsample != null) h = downsample.forward(h);
        if (upsample != null) h = upsample.forward(h);
        return h.MoveToOuterDisposeScope();
    }
}
