using LatentDiffusion.Transformers;
using LatentDiffusion.UNets;
using Xunit;

namespace LatentDiffusion.Tests;

/// <summary>The UNet presets have about the parameters of the matching Transformer presets on the same input.</summary>
public sealed class UNetPresetTests
{
    [Theory]
    [InlineData("UNet-S", "S/2")]
    [InlineData("UNet-B", "B/2")]
    public void PresetParameters_WithinFifteenPercentOfTransformer(string unet, string transformer)
    {
        using var u = new UNetModel(UNetPresets.Create(unet, 32, 4, 1000).Validate());
        using var t = new DiffusionTransformer(TransformerConfig.FromPreset(transformer, 32, 4, 1000));
        long nu = u.parameters().Sum(p => p.numel()), nt = t.parameters().Sum(p => p.numel());
        Assert.InRange((double)nu / nt, 0.85, 1.15);
    }

    [Fact]
    public void UnknownPreset_NamesTheKnownOnes()
    {
        var e = Assert.Throws<LdmException>(() => UNetPresets.Get("UNet-XXL"));
        Assert.Contains("UNet-S, UNet-B", e.Message);
        Assert.Equal(UNetPresets.Get("UNet-S").modelChannels, UNetPresets.Get(" s ").modelChannels);
    }
}
