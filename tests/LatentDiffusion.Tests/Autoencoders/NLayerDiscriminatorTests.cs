using LatentDiffusion.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests.Autoencoders;

public sealed class NLayerDiscriminatorTests
{
    [Fact]
    public void SameSeedGivesTheSameWeightsWhateverTheGlobalRng()
    {
        torch.manual_seed(1);
        using var a = new NLayerDiscriminator(3, 8, 2, new Generator(5));
        torch.manual_seed(2);
        using var b = new NLayerDiscriminator(3, 8, 2, new Generator(5));
        var sb = b.state_dict();
        foreach (var (k, v) in a.state_dict()) Assert.True(v.equal(sb[k]).all().item<bool>(), k);
        // PatchGAN: one logit per patch; 32×32 input, 2 stride-2 layers then two stride-1 4×4 convs → 6×6.
        using var _ = torch.no_grad();
        a.eval();
        Assert.Equal(new long[] { 2, 1, 6, 6 }, a.forward(torch.zeros(2, 3, 32, 32)).shape);
    }
}
