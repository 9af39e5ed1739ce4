using LatentDiffusion.Autoencoders;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests.Autoencoders;

public sealed class NarrowConvTests
{
    [Fact]
    public void PaddedTrainingPathGivesTheConvsValuesAndFiniteGradients()
    {
        // libtorch's CPU conv backward for few output channels sometimes reads uninitialised memory; 50 tries would
        // catch it with high probability on the plain path (about 1 in 100 per call, more after NaN-filled allocations).
        var conv = nn.Conv2d(64, 3, 3, padding: 1);
        for (int i = 0; i < 50; i++)
        {
            using var scope = NewDisposeScope();
            using (full(new long[] { 4, 64, 16, 16 }, float.NaN)) { }
            var x = randn(4, 64, 16, 16, requires_grad: true);
            var y = NarrowConv.Forward(conv, x);
            using (no_grad()) Assert.Equal(0f, (conv.forward(x) - y).abs().max().item<float>());
            (y * y).sum().backward();
            Assert.False(x.grad!.isnan().any().item<bool>(), $"NaN input gradient at try {i}");
        }
    }
}
