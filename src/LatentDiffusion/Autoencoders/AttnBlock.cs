using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LatentDiffusion.Autoencoders;

/// <summary>
/// Single-head spatial self-attention of the LDM autoencoder: GroupNorm, then q/k/v as 1×1 convs over all H·W
/// positions (scale C^−½), output through the 1×1 conv <c>proj_out</c>, added to the input.
/// Keys: <c>norm</c>, <c>q</c>, <c>k</c>, <c>v</c>, <c>proj_out</c> (1×1 conv weights (C, C, 1, 1)).
/// </summary>
internal sealed class AttnBlock : nn.Module<Tensor, Tensor>
{
    readonly GroupNorm32 norm;
    readonly Conv2d q, k, v, proj_out;

    public AttnBlock(int channels) : base(nameof(AttnBlock))
    {
        norm = AutoencoderLayers.Normalize(channels);
        q = nn.Conv2d(channels, channels, kernel_size: 1);
        k = nn.Conv2d(channels, channels, kernel_size: 1);
        v = nn.Conv2d(channels, channels, kernel_size: 1);
        proj_out = nn.Conv2d(channels, channels, kernel_size: 1);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3];
        var hn = norm.forward(x);
        // (B, C, H, W) → (B, 1, H·W, C): one head whose width is all C channels, so SDPA's default scale is C^−½ as in CompVis.
        Tensor Tokens(Tensor t) => t.reshape(b, c, h * w).transpose(1, 2).unsqueeze(1).contiguous();
        var attended = nn.functional.scaled_dot_product_attention(Tokens(q.forward(hn)), Tokens(k.forward(hn)), Tokens(v.forward(hn)));
        var back = attended.squeeze(1).transpose(1, 2).reshape(b, c, h, w);
        return (x + proj_out.forward(back)).MoveToOuterDisposeScope();
    }
}
