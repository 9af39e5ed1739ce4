using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LatentDiffusion.UNets;

/// <summary>
/// Self-attention over the pixels of a feature map (the official <c>AttentionBlock</c> with the legacy QKV order):
/// <c>norm</c>, <c>qkv</c> as a 1×1 Conv1d, attention per head, <c>proj_out</c> (Conv1d, zero-initialised), residual.
/// The legacy order splits heads before q/k/v: the qkv channels are [head 0: q k v | head 1: q k v | ...], and q and k
/// are each scaled by ch^-1/4 before the product, as the official code does for float16 stability.
/// </summary>
internal sealed class AttentionBlock : nn.Module<Tensor, Tensor>
{
    readonly GroupNorm32 norm;
    readonly Conv1d qkv, proj_out;

    public int NumHeads { get; }

    public AttentionBlock(int channels, int numHeads) : base(nameof(AttentionBlock))
    {
        if (numHeads < 1 || channels % numHeads != 0)
            throw new LdmException($"attention: {channels} channels cannot be split into {numHeads} heads; pick a head count that divides the width.");
        NumHeads = numHeads;
        norm = new GroupNorm32(channels);
        qkv = nn.Conv1d(channels, channels * 3, kernel_size: 1);
        proj_out = nn.Conv1d(channels, channels, kernel_size: 1);
        RegisterComponents();
    }

    /// <summary>The output projection (zero-initialised).</summary>
    public Conv1d ProjOut => proj_out;

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], c = x.shape[1];
        var flat = x.reshape(b, c, -1);                                     // (N, C, T)
        var h = proj_out.forward(LegacyQkvAttention(qkv.forward(norm.forward(flat)), NumHeads));
        return (flat + h).reshape(x.shape).MoveToOuterDisposeScope();
    }

    /// <summary>(N, heads·3·ch, T) → (N, heads·ch, T); softmax in float32.</summary>
    internal static Tensor LegacyQkvAttention(Tensor qkv, int heads)
    {
        using var scope = NewDisposeScope();
        long bs = qkv.shape[0], width = qkv.shape[1], length = qkv.shape[2];
        long ch = width / (3 * heads);
        var parts = qkv.reshape(bs * heads, ch * 3, length).split(ch, 1);
        double scale = 1 / Math.Sqrt(Math.Sqrt(ch));
        var weight = (parts[0] * scale).transpose(1, 2).matmul(parts[1] * scale);     // (B·H, T, S)
        weight = weight.to(ScalarType.Float32).softmax(-1).to(weight.dtype);
        var a = parts[2].matmul(weight.transpose(1, 2));                             // (B·H, ch, T)
        return a.reshape(bs, -1, length).MoveToOuterDisposeScope();
    }
}
