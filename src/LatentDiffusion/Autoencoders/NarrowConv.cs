using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LatentDiffusion.Autoencoders;

/// <summary>
/// Runs a conv with few output channels (an image or latent head) so that its backward pass is sound.
/// <para>Why: with libtorch 2.10 on CPU (TorchSharp 0.107), the input gradient of a conv with fewer than ~16 output
/// channels is now and then filled from uninitialised memory (NaN or garbage; about 1 call in 100 for 64→3, 3×3),
/// which wrecks training. While gradients are being recorded, the weight is padded with zero filters to
/// <see cref="MinTrainingChannels"/> outputs and the extra channels are cut off again: the values and gradients are the same,
/// and the backward pass takes the path that works. Without autograd (inference) the conv runs as is.</para>
/// </summary>
internal static class NarrowConv
{
    public const int MinTrainingChannels = 32;

    public static Tensor Forward(Conv2d conv, Tensor x)
    {
        var weight = conv.weight!;
        long outChannels = weight.shape[0];
        if (outChannels >= MinTrainingChannels || !torch.is_grad_enabled() || !(weight.requires_grad || x.requires_grad))
            return conv.forward(x);
        using var scope = torch.NewDisposeScope();
        long extra = MinTrainingChannels - outChannels;
        var paddedWeight = torch.cat([weight, torch.zeros([extra, .. weight.shape[1..]], weight.dtype, weight.device)], 0);
        Tensor? paddedBias = conv.bias is { } b ? torch.cat([b, torch.zeros([extra], b.dtype, b.device)], 0) : null;
        long[] stride = [conv.stride[0], conv.stride[1]];
        long[] padding = conv.padding is { } p ? [p[0], p[1]] : [0, 0];
        var y = nn.functional.conv2d(x, paddedWeight, paddedBias, stride, padding);
        return y[.., ..(int)outChannels].MoveToOuterDisposeScope();
    }
}
