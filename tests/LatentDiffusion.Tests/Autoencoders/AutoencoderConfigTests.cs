using System.Text.Json.Nodes;
using LatentDiffusion.Autoencoders;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests.Autoencoders;

public sealed class AutoencoderConfigTests
{
    [Fact]
    public void SdPresetHasTheParameterCountAndLatentShapeOfStableDiffusionsAutoencoder()
    {
        using var model = new AutoencoderKL(AutoencoderConfig.Sd);
        // kl-f8 / sd-vae-ft-mse: 83,653,863 parameters.
        Assert.Equal(83_653_863L, model.parameters().Sum(p => p.NumberOfElements));
        Assert.Equal(32, AutoencoderConfig.Sd.LatentResolution);
        Assert.Contains("decoder.up.1.upsample.conv.weight", model.state_dict().Keys);
        Assert.Contains("encoder.mid.attn_1.q.weight", model.state_dict().Keys);
    }

    [Theory]
    [InlineData("f4-32", 3, 32, 8)]
    [InlineData("f4-28", 1, 28, 7)]
    public void SmallPresetsEncodeToF4Latents(string preset, int channels, int size, int latent)
    {
        var config = AutoencoderConfig.FromPreset(preset);
        using var model = new AutoencoderKL(config);
        using var _ = torch.no_grad();
        var x = torch.zeros(2, channels, size, size);
        var posterior = model.Encode(x);
        Assert.Equal(new long[] { 2, 4, latent, latent }, posterior.Mean.shape);
        Assert.Equal(x.shape, model.Decode(posterior.Mode()).shape);
    }

    [Fact]
    public void FreshModelHasUnitGroupNormScalesAndZeroShifts()
    {
        // TorchSharp's GroupNorm leaves these uninitialised; a fresh model must still start from PyTorch's defaults.
        using var model = new AutoencoderKL(AutoencoderConfig.F4Rgb32);
        foreach (var (name, p) in model.named_parameters().Where(kv => kv.name.Contains("norm")))
            Assert.True(p.equal(name.EndsWith("weight") ? torch.ones_like(p) : torch.zeros_like(p)).all().item<bool>(), name);
    }

    [Fact]
    public void JsonRoundTripAndCompVisForm()
    {
        var c = AutoencoderConfig.F4Rgb32;
        var back = AutoencoderConfig.FromJson(c.ToJson());
        Assert.Equal(c.ChMult, back.ChMult);
        Assert.Equal(c.ToJson().ToJsonString(), back.ToJson().ToJsonString());
        Assert.Contains("\"ch_mult\"", c.ToJson().ToJsonString());
        var compVis = JsonNode.Parse("""{"ddconfig": {"double_z": true, "z_channels": 4, "resolution": 256, "in_channels": 3, "out_ch": 3, "ch": 128, "ch_mult": [1,2,4,4], "num_res_blocks": 2, "attn_resolutions": [], "dropout": 0.0}, "embed_dim": 4}""")!.AsObject();
        Assert.Equal(AutoencoderConfig.Sd.ToJson().ToJsonString(), AutoencoderConfig.FromJson(compVis).ToJson().ToJsonString());
    }

    [Theory]
    [InlineData("""{"ch": 48, "ch_mult": [1,2], "num_res_blocks": 1, "z_channels": 4, "embed_dim": 4, "resolution": 16}""", "multiple of 32")]
    [InlineData("""{"ch": 32, "ch_mult": [1,2,2], "num_res_blocks": 1, "z_channels": 4, "embed_dim": 4, "resolution": 30}""", "not divisible")]
    [InlineData("""{"ch": 32, "ch_mult": [], "num_res_blocks": 1, "z_channels": 4, "embed_dim": 4, "resolution": 16}""", "ch_mult")]
    [InlineData("""{"ch": 32, "ch_mult": [1], "num_res_blocks": 1, "z_channels": 4, "resolution": 16}""", "embed_dim")]
    [InlineData("""{"ch": "wide", "ch_mult": [1], "num_res_blocks": 1, "z_channels": 4, "embed_dim": 4, "resolution": 16}""", "malformed")]
    public void BadConfigsAreUserErrors(string json, string fragment)
    {
        var e = Assert.Throws<LdmException>(() => AutoencoderConfig.FromJson(JsonNode.Parse(json)!.AsObject()));
        Assert.Contains(fragment, e.Message);
    }
}
