using LatentDiffusion.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LatentDiffusion.Autoencoders;

/// <summary>
/// The LDM encoder: conv_in, one <see cref="ResolutionLevel"/> per ch_mult entry (down-sampling after all but the last),
/// the <see cref="MidBlock"/>, GroupNorm + SiLU and conv_out to 2·z_channels (mean and log-variance) or z_channels.
/// </summary>
internal sealed class Encoder : nn.Module<Tensor, Tensor>
{
    readonly Conv2d conv_in, conv_out;
    readonly ModuleList<ResolutionLevel> down;
    readonly MidBlock mid;
    readonly GroupNorm32 norm_out;

    public Encoder(AutoencoderConfig config) : base(nameof(Encoder))
    {
        int ch = config.Ch, levels = config.ChMult.Length;
        conv_in = nn.Conv2d(config.InChannels, ch, kernel_size: 3, stride: 1, padding: 1);
        var levelList = new List<ResolutionLevel>();
        int blockIn = ch, res = config.Resolution;
        for (int i = 0; i < levels; i++)
        {
            int blockOut = ch * config.ChMult[i];
            var blocks = new List<ResnetBlock>();
            for (int j = 0; j < config.NumResBlocks; j++)
            {
                blocks.Add(new ResnetBlock(blockIn, blockOut, config.Dropout));
                blockIn = blockOut;
            }
            bool last = i == levels - 1;
            levelList.Add(new ResolutionLevel(blocks, config.AttnResolutions.Contains(res), last ? null : new Downsample(blockIn), null));
            if (!last) res /= 2;
        }
        down = new ModuleList<ResolutionLevel>(levelList.ToArray());
        mid = new MidBlock(blockIn, config.Dropout);
        norm_out = AutoencoderLayers.Normalize(blockIn);
        conv_out = nn.Conv2d(blockIn, config.DoubleZ ? 2 * config.ZChannels : config.ZChannels, kernel_size: 3, stride: 1, padding: 1);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = conv_in.forward(x);
        foreach (var level in down) h = level.forward(h);
        h = mid.forward(h);
        h = NarrowConv.Forward(conv_out, nn.functional.silu(norm_out.forward(h)));
        return h.MoveToOuterDisposeScope();
    }
}
