using LatentDiffusion.Autoencoders;
using LatentDiffusion.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests.Autoencoders;

/// <summary>
/// Weights from the field: a model's state dict renamed to diffusers' AutoencoderKL naming (by an independent
/// forward mapping written here), saved, loaded back through <see cref="AutoencoderKeys"/>, must give the same outputs.
/// </summary>
public sealed class AutoencoderKeysTests
{
    // Attention at 8×8 so that attention blocks inside the levels (attentions.j) are renamed too, not only the middle's.
    internal static readonly AutoencoderConfig Tiny = new()
    {
        Ch = 32, ChMult = [1, 2], NumResBlocks = 1, AttnResolutions = [8], ZChannels = 4, EmbedDim = 4,
        InChannels = 3, OutCh = 3, Resolution = 16,
    };

    /// <summary>CompVis name → diffusers name, built token by token (the opposite direction of the code under test).</summary>
    static string ToDiffusers(string key, int levels, bool oldAttentionNames)
    {
        var p = key.Split('.').ToList();
        var o = new List<string> { p[0] };
        if (p[0] is "quant_conv" or "post_quant_conv") return key;
        int i = 1;
        string[] attnNew = ["group_norm", "to_q", "to_k", "to_v", "to_out.0"], attnOld = ["group_norm", "query", "key", "value", "proj_attn"];
        string Attn(string part) => (oldAttentionNames ? attnOld : attnNew)[Array.IndexOf(["norm", "q", "k", "v", "proj_out"], part)];
        string Res(string part) => part switch { "nin_shortcut" => "conv_shortcut", _ => part };
        switch (p[i])
        {
            case "down" or "up":
                int level = int.Parse(p[i + 1]);
                o.Add(p[i] == "down" ? "down_blocks" : "up_blocks");
                o.Add((p[i] == "down" ? level : levels - 1 - level).ToString());
                string what = p[i + 2];
                if (what == "block") { o.Add("resnets"); o.Add(p[i + 3]); o.Add(Res(p[i + 4])); }
                else if (what == "attn") { o.Add("attentions"); o.Add(p[i + 3]); o.Add(Attn(p[i + 4])); }
                else if (what == "downsample") { o.Add("downsamplers"); o.Add("0"); o.Add("conv"); }
                else if (what == "upsample") { o.Add("upsamplers"); o.Add("0"); o.Add("conv"); }
                else throw new InvalidOperationException(key);
                break;
            case "mid":
                o.Add("mid_block");
                if (p[i + 1] == "attn_1") { o.Add("attentions"); o.Add("0"); o.Add(Attn(p[i + 2])); }
                else { o.Add("resnets"); o.Add(p[i + 1] == "block_1" ? "0" : "1"); o.Add(Res(p[i + 2])); }
                break;
            case "norm_out": o.Add("conv_norm_out"); break;
            default: o.Add(p[i]); break; // conv_in, conv_out
        }
        o.Add(p[^1]);
        return string.Join(".", o);
    }

    internal static Dictionary<string, Tensor> DiffusersStateDict(AutoencoderKL model, bool oldNames)
    {
        var result = new Dictionary<string, Tensor>();
        foreach (var (k, v) in model.state_dict())
        {
            string name = ToDiffusers(k, model.Config.ChMult.Length, oldNames);
            bool linear = k.Contains("attn") && !k.Contains(".norm.") && k.EndsWith(".weight");
            result[name] = linear ? v.detach().reshape(v.shape[0], v.shape[1]).clone() : v.detach().clone();
        }
        return result;
    }

    internal static AutoencoderKL RandomModel(long seed)
    {
        torch.manual_seed(seed);
        var model = new AutoencoderKL(Tiny);
        using var _ = torch.no_grad();
        var g = new Generator((ulong)seed + 1);
        // Non-trivial biases and norm scales, so a swapped or missing tensor changes the output.
        foreach (var (name, p) in model.named_parameters())
            if (p.dim() == 1) p.copy_(torch.randn(p.shape, generator: g) * 0.1 + (name.Contains("norm") && name.EndsWith("weight") ? 1.0 : 0.0));
        model.eval();
        return model;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void DiffusersNamedWeightsLoadAndGiveTheSameOutputs(bool oldAttentionNames)
    {
        using var model = RandomModel(7);
        var diffusers = DiffusersStateDict(model, oldAttentionNames);
        Assert.Contains("encoder.mid_block.attentions.0." + (oldAttentionNames ? "query" : "to_q") + ".weight", diffusers.Keys);
        Assert.Contains("decoder.up_blocks.0.upsamplers.0.conv.weight", diffusers.Keys); // CompVis up.1 (lowest resolution) comes first
        Assert.Equal(2, diffusers["encoder.mid_block.attentions.0." + (oldAttentionNames ? "query" : "to_q") + ".weight"].dim());

        string dir = RepoPaths.NewTempDir("ae-keys");
        string path = Path.Combine(dir, "diffusion_pytorch_model.safetensors");
        SafetensorsWriter.Write(path, diffusers);
        using var file = SafetensorsFile.Open(path);
        using var loaded = AutoencoderKL.FromStateDict(Tiny, file.ReadAll(), path);

        using var _ = torch.no_grad();
        var x = torch.rand([2, 3, 16, 16], generator: new Generator(3)) * 2 - 1;
        var expected = model.forward(x);
        var actual = loaded.forward(x);
        Assert.Equal(0.0, (expected - actual).abs().max().item<float>());
    }

    [Fact]
    public void FirstStagePrefixIsStrippedAndTheRestOfAnLdmCheckpointIgnored()
    {
        using var model = RandomModel(11);
        var full = new Dictionary<string, Tensor>();
        foreach (var (k, v) in model.state_dict()) full["first_stage_model." + k] = v.detach().clone();
        full["model.diffusion_model.input_blocks.0.0.weight"] = torch.zeros(2, 2);
        full["cond_stage_model.transformer.weight"] = torch.zeros(3);
        using var loaded = AutoencoderKL.FromStateDict(Tiny, full, "model.ckpt");

        // A CompVis autoencoder checkpoint carries its training loss (LPIPS, discriminator) beside the model.
        var aeOnly = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
        aeOnly["loss.discriminator.main.0.weight"] = torch.zeros(1);
        using var loaded2 = AutoencoderKL.FromStateDict(Tiny, aeOnly, "kl-f8.ckpt");

        using var _ = torch.no_grad();
        var x = torch.rand([1, 3, 16, 16], generator: new Generator(5)) * 2 - 1;
        Assert.True(model.forward(x).equal(loaded.forward(x)).all().item<bool>());
        Assert.True(model.forward(x).equal(loaded2.forward(x)).all().item<bool>());
    }

    [Fact]
    public void WeightsOfAnotherArchitectureGiveOneLineError()
    {
        using var model = RandomModel(13);
        var other = Tiny with { ChMult = [1, 2, 2] };
        var e = Assert.Throws<LdmException>(() => AutoencoderKL.FromStateDict(other, model.state_dict(), "small.safetensors"));
        Assert.DoesNotContain('\n', e.Message);
        Assert.Contains("do not fit", e.Message);
    }

    [Fact]
    public void CheckpointKeepsConfigAndLatentScale()
    {
        using var model = RandomModel(17);
        model.LatentScale = 0.18215;
        string path = Path.Combine(RepoPaths.NewTempDir("ae-ckpt"), "ae.safetensors");
        model.Save(path);
        using var loaded = AutoencoderKL.Load(path);
        Assert.Equal(0.18215, loaded.LatentScale);
        Assert.Equal(Tiny.ChMult, loaded.Config.ChMult);
        Assert.Equal(Tiny with { ChMult = loaded.Config.ChMult, AttnResolutions = loaded.Config.AttnResolutions }, loaded.Config);
        using var _ = torch.no_grad();
        var x = torch.rand([1, 3, 16, 16], generator: new Generator(5)) * 2 - 1;
        Assert.True(model.forward(x).equal(loaded.forward(x)).all().item<bool>());
    }
}
