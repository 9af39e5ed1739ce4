using LatentDiffusion.UNets;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests;

/// <summary>
/// Inputs whose side is not divisible by 2^(levels−1) (our extension; docs/unet.md, "Input sizes"): the way down halves
/// rounding up, the way up returns to the recorded sizes, so the output has the input's shape; even sizes compute what
/// the official layers (scale factor 2, floor-mode pooling) compute.
/// </summary>
public class UNetInputSizeTests
{
    /// <summary>A 3-level class UNet on size×size×4 latents (learned sigma), attention at 1/2, optionally resampling inside ResBlocks.</summary>
    static UNetConfig ThreeLevels(int size, bool resblockUpdown = false) => new UNetConfig
    {
        ImageSize = size, InChannels = 4, ModelChannels = 32, OutChannels = 8, NumResBlocks = 1, AttentionResolutions = [2],
        ChannelMult = [1, 2, 2], NumHeads = 2, NumClassesOrNull = 10, ResblockUpdown = resblockUpdown,
    }.Validate();

    [Theory]
    [InlineData(7, false)]   // the 7×7×4 latents of the Fashion-MNIST autoencoder: 7 → 4 → 2
    [InlineData(7, true)]
    [InlineData(5, false)]   // 5 → 3 → 2
    [InlineData(5, true)]
    [InlineData(1, false)]   // every level keeps one pixel
    public void OddSizesGiveOutputsOfTheInputShapeAndFiniteGradients(int size, bool resblockUpdown)
    {
        using var model = TinyUNets.RandomModel(ThreeLevels(size, resblockUpdown));
        var sides = new List<(string name, long h, long w)>();
        model.DebugTap = (name, h) => { if (h.dim() == 4) sides.Add((name, h.shape[2], h.shape[3])); };
        using var scope = NewDisposeScope();
        var g = new Generator(3, torch.CPU);
        var x = randn(new long[] { 2, 4, size, size }, generator: g);
        var output = model.Forward(x, tensor(new long[] { 10, 600 }), null, tensor(new long[] { 1, 10 }));

        Assert.Equal(new long[] { 2, 8, size, size }, output.shape);
        long half = (size + 1) / 2, quarter = (half + 1) / 2;
        Assert.Contains(("middle_block", quarter, quarter), sides);
        Assert.Equal(new[] { size, half, quarter }.Distinct(), sides.Where(s => s.name.StartsWith("input_blocks", StringComparison.Ordinal)).Select(s => s.h).Distinct());

        ((output * output).mean() + output.mean()).backward();
        foreach (var (name, p) in model.named_parameters())
        {
            if (p.grad is not { } grad) continue;
            Assert.True(grad.isfinite().all().item<bool>(), $"gradient of {name} is not finite at {size}×{size}");
        }
        Assert.True(model.named_parameters().Count(p => p.parameter.grad is { } gr && gr.count_nonzero().item<long>() > 0) > 100,
            "gradients should reach the whole network");
    }

    [Theory]
    [InlineData(2)]
    [InlineData(4)]
    [InlineData(6)]
    public void EvenSizesResampleAsTheOfficialLayers(int size)
    {
        // Upsample to twice the input equals the official interpolation by a scale factor of 2 (then the same conv),
        // and the ceil-mode average pool equals the official floor-mode one: to the bit.
        using var scope = NewDisposeScope();
        var x = randn(2, 32, size, size);
        var up = new Upsample(32, useConv: true);
        var conv = (TorchSharp.Modules.Conv2d)up.named_children().Single().module;
        using (no_grad())
        {
            var official = conv.forward(nn.functional.interpolate(x, scale_factor: [2.0, 2.0], mode: InterpolationMode.Nearest));
            Assert.True(Same(official, up.forward(x, [2 * size, 2 * size])));
            Assert.True(Same(official, up.forward(x)));
            var pooled = new Downsample(32, useConv: false).forward(x);
            Assert.True(Same(nn.functional.avg_pool2d(x, kernel_size: 2, stride: 2), pooled));
        }
    }

    [Fact]
    public void OddSidesDownsampleRoundingUpAndUpsampleToTheGivenSize()
    {
        using var scope = NewDisposeScope();
        var x = arange(49, dtype: ScalarType.Float32).reshape(1, 1, 7, 7).expand(1, 32, 7, 7).contiguous();
        using (no_grad())
        {
            var pooled = new Downsample(32, useConv: false).forward(x);
            var strided = new Downsample(32, useConv: true).forward(x);
            Assert.Equal(new long[] { 1, 32, 4, 4 }, pooled.shape);
            Assert.Equal(new long[] { 1, 32, 4, 4 }, strided.shape);
            // The last, partial window averages what it covers: rows 6, columns 6 → the single pixel 48.
            Assert.Equal(48f, pooled[0, 0, 3, 3].item<float>());
            Assert.Equal((0f + 1 + 7 + 8) / 4, pooled[0, 0, 0, 0].item<float>());
            var up = new Upsample(32, useConv: false).forward(pooled, [7, 7]);
            Assert.Equal(new long[] { 1, 32, 7, 7 }, up.shape);
        }
    }

    static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();
}
