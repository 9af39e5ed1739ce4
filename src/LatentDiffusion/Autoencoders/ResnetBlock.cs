using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LatentDiffusion.Autoencoders;

/// <summary>
/// Residual block of the LDM autoencoder (no timestep input): GroupNorm(32) → SiLU → 3×3 conv, twice (dropout before the
/// second conv), plus a 1×1 <c>nin_shortcut</c> on the skip path when the channel count changes.
/// Keys: <c>norm1</c>, <c>conv1</c>, <c>norm2</c>, <c>conv2</c>, <c>nin_shortcut</c>.
/// </summary>
internal sealed class ResnetBlock : nn.Module<Tensor, Tensor>
{
    readonly GroupNorm32 norm1, norm2;
    readonly Conv2d conv1, conv2;
    readonly Dropout dropout;
    readonly Conv2d? nin_shortcut;

    public int InChannels { get; }
    public int OutChannels { get; }

    public ResnetBlock(int inChannels, int outChannels, double dropout) : base(nameof(ResnetBlock))
    {
        InChannels = inChannels;
        OutChannels = outChannels;
        norm1 = AutoencoderLayers.Normalize(inChannels);
        conv1 = nn.Conv2d(inChannels, outChannels, kernel_size: 3, stride: 1, padding: 1);
        norm2 = AutoencoderLayers.Normalize(outChannels);
        this.dropout = nn.Dropout(dropout);
        conv2 = nn.Conv2d(outChannels, outChannels, kernel_size: 3, stride: 1, padding: 1);
        if (inChannels != outChannels)
            nin_shortcut = nn.Conv2d(inChannels, outChannels, kernel_size: 1);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = conv1.forward(nn.functional.silu(norm1.forward(x)));
        h = conv2.forward(dropout.forward(nn.functional.silu(norm2.forward(h))));
        var skip = nin_shortcut is null ? x : nin_shortcut.forward(x);
        return (skip + h).MoveToOuterDisposeScope();
    }
}

/// <summary>Shared pieces of the autoencoder layers.</summary>
static class AutoencoderLayers
{
    /// <summary>CompVis' <c>Normalize</c>: GroupNorm with 32 groups, eps 1e-6, affine (scale 1, shift 0 at start).</summary>
    public static GroupNorm32 Normalize(int channels) => new(channels);
}

/// <summary>
/// GroupNorm(32 groups, eps 1e-6) with affine <c>weight</c> and <c>bias</c>, through <c>nn.functional.group_norm</c>.
/// Our own module because TorchSharp 0.107's <c>nn.GroupNorm</c> leaves its affine parameters uninitialised.
/// </summary>
internal sealed class GroupNorm32 : nn.Module<Tensor, Tensor>
{
    readonly Parameter weight, bias;

    public GroupNorm32(int channels) : base(nameof(GroupNorm32))
    {
        // Detached from any dispose scope around the constructor: the parameters live as long as the module.
        weight = new Parameter(torch.ones(channels).DetachFromDisposeScope());
        bias = new Parameter(torch.zeros(channels).DetachFromDisposeScope());
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => nn.functional.group_norm(x, 32, weight, bias, 1e-6);
}
