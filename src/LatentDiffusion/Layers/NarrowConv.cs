using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LatentDiffusion.Layers;

/// <summary>
/// Runs a Conv2d whose output channels are not a multiple of <see cref="ChannelBlock"/> (an image or latent head: 1, 3,
/// 4, 6, 8 channels) so that its input gradient is sound.
/// <para>Why: libtorch 2.10 on the CPU (TorchSharp 0.107) computes convolutions with oneDNN 3.7, which stores
/// channels in blocks of 16. For such a conv, the backward pass copies the output gradient into a buffer padded to
/// whole blocks (layout <c>aBcd16b</c>, flagged padded in <c>ONEDNN_VERBOSE</c>) and reads the padding channels, which
/// nobody zeroed: the input gradient then depends on what that memory held before. A fresh process gets zeroed pages
/// and the right answer; a process that has freed NaN tensors (a test suite, a long training) gets NaN. With libtorch's
/// switch that fills every new CPU allocation with NaN junk (<c>caffe2_cpu_allocator_do_junk_fill</c>), the input
/// gradient of a 3×3 conv is NaN for 3, 6, 8, 24, 33, 40 and 56 outputs (float32 and bfloat16) and exact for 16, 32,
/// 48, 64, 80 and 96; the weight and bias gradients are right in every case.</para>
/// <para>So while the input's gradient is being recorded on the CPU, the weight is padded with zero filters to the next
/// multiple of <see cref="ChannelBlock"/> outputs and the extra channels are cut off again: the same values and
/// gradients, through the path that works. Otherwise (inference, other devices, already whole blocks) the conv runs
/// as is.</para>
/// </summary>
internal static class NarrowConv
{
    /// <summary>oneDNN's widest float32 channel block on the CPU (16 with AVX-512; AVX2's 8 divides it).</summary>
    public const int ChannelBlock = 16;

    /// <summary>The output channels the padded path computes for a conv with <paramref name="outChannels"/> outputs.</summary>
    public static long PaddedChannels(long outChannels) => (outChannels + ChannelBlock - 1) / ChannelBlock * ChannelBlock;

    /// <summary><paramref name="conv"/> applied to <paramref name="x"/>, through the padded path when its backward needs it.</summary>
    public static Tensor Forward(Conv2d conv, Tensor x)
    {
        var weight = conv.weight!;
        long outChannels = weight.shape[0];
        bool faulty = outChannels % ChannelBlock != 0 && x.device_type == DeviceType.CPU && x.requires_grad && torch.is_grad_enabled();
        if (!faulty || conv.groups != 1 || conv.padding is null)
            return conv.forward(x);
        using var scope = torch.NewDisposeScope();
        long extra = PaddedChannels(outChannels) - outChannels;
        var paddedWeight = torch.cat([weight, torch.zeros([extra, .. weight.shape[1..]], weight.dtype, weight.device)], 0);
        Tensor? paddedBias = conv.bias is { } b ? torch.cat([b, torch.zeros([extra], b.dtype, b.device)], 0) : null;
        var y = nn.functional.conv2d(x, paddedWeight, paddedBias, conv.stride, conv.padding, conv.dilation);
        return y[.., ..(int)outChannels].MoveToOuterDisposeScope();
    }
}
