using LatentDiffusion.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests.Layers;

/// <summary>
/// <see cref="NarrowConv"/> against libtorch's faulty CPU conv backward: with every new allocation NaN-filled (which
/// turns the plain conv's input gradient into NaN for these output widths), its values and gradients are finite and
/// equal those of the same computation on clean memory and the input gradient equals the transposed convolution
/// computed in float64 (a path without oneDNN).
/// </summary>
[Collection(JunkFilledAllocationsCollection.Name)]
public sealed class NarrowConvTests
{
    [Theory]
    [InlineData(64, 3, 3, 1, 1, false)]    // an image head
    [InlineData(32, 6, 3, 1, 1, false)]    // the UNet's out.2 with learned sigma
    [InlineData(32, 8, 3, 1, 1, false)]    // an encoder's conv_out (2 × 4 latent channels)
    [InlineData(32, 40, 3, 1, 1, false)]   // wider than 32 but not whole 16-channel blocks
    [InlineData(16, 1, 4, 2, 1, false)]    // the discriminator's logit conv
    [InlineData(32, 6, 3, 1, 1, true)]     // bfloat16 (mixed-precision training)
    public void GradientsAreRightEvenWhenNewMemoryHoldsNaN(int inChannels, int outChannels, int kernel, int stride, int padding, bool bf16)
    {
        var dtype = bf16 ? ScalarType.BFloat16 : ScalarType.Float32;
        using var conv = nn.Conv2d(inChannels, outChannels, kernel, stride: stride, padding: padding);
        conv.to(dtype);
        using var scope = NewDisposeScope();
        var g = new Generator(7, torch.CPU);
        var x = randn(new long[] { 2, inChannels, 8, 8 }, generator: g).to(dtype);
        Tensor gradOut;
        using (no_grad()) gradOut = randn(conv.forward(x).shape, generator: g).to(dtype);

        var clean = Run(conv, x, gradOut);
        Tensor[] junk;
        using (new JunkFilledAllocations()) junk = Run(conv, x, gradOut);

        string[] names = ["output", "input gradient", "weight gradient", "bias gradient"];
        for (int i = 0; i < names.Length; i++)
        {
            Assert.True(junk[i].isfinite().all().item<bool>(), $"{names[i]} is not finite on NaN-filled memory");
            Assert.True(Same(junk[i], clean[i]), $"{names[i]} differs between clean and NaN-filled memory");
        }
        // float32: the plain conv's values to the bit. bfloat16: libtorch's plain CPU conv with few outputs is itself off
        // by 20-30% (docs/unet.md), so both are held to the float64 result instead.
        if (!bf16) using (no_grad()) Assert.True(Same(conv.forward(x), clean[0]), "the padded path changed the conv's values");
        var w64 = conv.weight!.detach().to(ScalarType.Float64);
        var output = nn.functional.conv2d(x.to(ScalarType.Float64), w64, conv.bias!.detach().to(ScalarType.Float64), [stride, stride], [padding, padding]);
        var inputGradient = nn.functional.conv_transpose2d(gradOut.to(ScalarType.Float64), w64, strides: [stride, stride], padding: [padding, padding]);
        double tolerance = bf16 ? 0.01 : 1e-5;
        Assert.True(Close(junk[0], output, tolerance), "the output is not the convolution");
        Assert.True(Close(junk[1], inputGradient, tolerance), "the input gradient is not the transposed convolution of the output gradient");
    }

    [Fact]
    public void ConvsOfWholeBlocksAndInferenceRunUnchanged()
    {
        // Nothing to pad at 32 outputs; without autograd the narrow conv runs as is. Both give the plain conv's values.
        using var wide = nn.Conv2d(8, 32, 3, padding: 1);
        using var narrow = nn.Conv2d(8, 3, 3, padding: 1);
        using var x = randn(1, 8, 5, 5);
        using (no_grad())
        {
            Assert.True(Same(NarrowConv.Forward(narrow, x), narrow.forward(x)));
            Assert.True(Same(NarrowConv.Forward(wide, x), wide.forward(x)));
        }
        Assert.Equal(16, NarrowConv.PaddedChannels(3));
        Assert.Equal(48, NarrowConv.PaddedChannels(40));
        Assert.Equal(32, NarrowConv.PaddedChannels(32));
    }

    /// <summary>Same shape and bit-identical values.</summary>
    static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    /// <summary>Within <paramref name="relative"/> of the largest reference value.</summary>
    static bool Close(Tensor actual, Tensor reference, double relative) =>
        (actual.to(ScalarType.Float64) - reference).abs().max().item<double>() <= relative * reference.abs().max().item<double>();

    /// <summary>Output, input gradient, weight gradient, bias gradient of one forward and backward through NarrowConv.</summary>
    static Tensor[] Run(Conv2d conv, Tensor x, Tensor gradOut)
    {
        foreach (var p in conv.parameters()) p.grad = null;
        var input = x.detach().requires_grad_(true);
        var y = NarrowConv.Forward(conv, input);
        y.backward([gradOut]);
        return [y.detach().clone(), input.grad!.clone(), conv.weight!.grad!.clone(), conv.bias!.grad!.clone()];
    }
}
