using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Autoencoders;

/// <summary>The middle of encoder and decoder at the lowest resolution: ResnetBlock → AttnBlock → ResnetBlock.
/// Keys: <c>block_1</c>, <c>attn_1</c>, <c>block_2</c>.</summary>
internal sealed class MidBlock : nn.Module<Tensor, Tensor>
{
    readonly ResnetBlock block_1, block_2;
    readonly AttnBlock attn_1;

    public MidBlock(int channels, double dropout) : base(nameof(MidBlock))
    {
        block_1 = new ResnetBlock(channels, channels, dropout);
        attn_1 = new AttnBlock(channels);
        block_2 = new ResnetBlock(channels, channels, dropout);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var h1 = block_1.forward(x);
        using var h2 = attn_1.forward(h1);
        return block_2.forward(h2);
    }
}
