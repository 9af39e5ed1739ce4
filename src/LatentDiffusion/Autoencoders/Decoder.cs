using LatentDiffusion.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LatentDiffusion.Autoencoders;

/// <summary>
/// The LDM decoder: conv_in from z_channels, the <see cref="MidBlock"/>, then the levels from the lowest resolution up
/// (num_res_blocks + 1 residual blocks each, up-sampling after all but the top), GroupNorm + SiLU and conv_out.
/// As in CompVis, <c>up.i</c> is indexed by resolution level (up.0 is the full-resolution level, run last).
/// </summary>
internal sealed class Decoder : nn.Module<Tensor, Tensor>
{
    readonly Conv2d conv_in, conv_out;
    readonly MidBlock mid;
    readonly ModuleList<ResolutionLevel> up;
    readonly GroupNorm32 norm_out;

    public Decoder(AutoencoderConfig config) : base(nameof(Decoder))
    {
        int ch = config.Ch, levels = config.ChMult.Length;
        int blockIn = ch * config.ChMult[levels - 1];
        int res = config.Resolution / config.DownsampleFactor;
        conv_in = nn.Conv2d(config.ZChannels, blockIn, kernel_size: 3, stride: 1, padding: 1);
        mid = new MidBlock(blockIn, config.Dropout);
        var byLevel = new ResolutionLevel[levels];
        for (int i = levels - 1; i >= 0; i--)
        {
            int blockOut = ch * config.ChMult[i];
            var blocks = new List<ResnetBlock>();
            for (int j = 0; j < config.NumResBlocks + 1; j++)
            {
                blocks.Add(new ResnetBlock(blockIn, blockOut, config.Dropout));
                blockIn = blockOut;
            }
            bool top = i == 0;
            byLevel[i] = new ResolutionLevel(blocks, config.AttnResolutions.Contains(res), null, top ? null : new Upsample(blockIn));
            if (!top) res *= 2;
        }
        up = new ModuleList<ResolutionLevel>(byLevel);
        norm_out = AutoencoderLayers.Normalize(blockIn);
        conv_out = nn.Conv2d(blockIn, config.OutCh, kernel_size: 3, stride: 1, padding: 1);
        RegisterComponents();
    }

    public override Tensor forward(Tensor z)
    {
        using var scope = NewDisposeScope();
        var h = mid.forward(conv_in.forward(z));
        for (int i = up.Count - 1; i >= 0; i--) h = up[i].forward(h);
        h = NarrowConv.Forward(conv_out, nn.functional.silu(norm_out.forward(h)));
        return h.MoveToOuterDisposeScope();
    }
}
