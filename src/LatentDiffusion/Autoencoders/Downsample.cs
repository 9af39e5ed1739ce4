using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LatentDiffusion.Autoencoders;

/// <summary>
/// Halves H and W: zero-pad one row at the bottom and one column at the right (CompVis' asymmetric pad (0,1,0,1)),
/// then a 3×3 conv with stride 2 and no padding. Key: <c>conv</c>.
/// </summary>
internal sealed class Downsample : nn.Module<Tensor, Tensor>
{
    readonly Conv2d conv;

    public Downsample(int channels) : base(nameof(Downsample))
    {
        conv = nn.Conv2d(channels, channels, kernel_size: 3, stride: 2);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var padded = nn.functional.pad(x, [0, 1, 0, 1], PaddingModes.Constant, 0);
        return conv.forward(padded);
    }
}
