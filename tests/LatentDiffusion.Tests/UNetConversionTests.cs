using System.Text.Json.Nodes;
using LatentDiffusion.Denoisers;
using LatentDiffusion.IO;
using LatentDiffusion.Tests.Fixtures;
using LatentDiffusion.UNets;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests;

/// <summary>
/// `ldm convert --kind unet`: every `unet_ldm` fixture's official weights, saved as a CompVis-style .pt (keys under
/// <c>model.diffusion_model.</c>, beside a tensor of another sub-model), with the manifest's constructor arguments as
/// the --config file, convert into a denoiser file that reproduces the fixture's forward output within its tolerance.
/// </summary>
[Collection(ConsoleCollection.Name)]
public class UNetConvertCommandTests
{
    [Fact]
    public void ConvertsEveryUNetFixtureAndKeepsTheForwardPass()
    {
        var found = FixtureCatalog.Current.OfKind("unet_ldm").ToList();
        Assert.NotEmpty(found);
        foreach (var folder in found)
        {
            using var fixture = folder.Open();
            string dir = RepoPaths.NewTempDir("unetconv");
            string pt = Path.Combine(dir, "ldm.pt");
            using (var weights = SafetensorsFile.Open(fixture.WeightsPath))
            {
                var all = weights.ReadAll().ToDictionary(kv => UNetConversion.CompVisPrefix + kv.Key, kv => kv.Value);
                all["first_stage_model.decoder.conv_in.weight"] = torch.zeros(2, 2, 3, 3);
                PyTorchCheckpoint.Save(pt, all);
                foreach (var t in all.Values) t.Dispose();
            }
            string config = Path.Combine(dir, "unet.json");
            File.WriteAllText(config, new JsonObject { ["params"] = fixture.ModelConfig.DeepClone() }.ToJsonString());
            string output = Path.Combine(dir, "unet.safetensors");

            var convert = CliTestHost.Run("convert", pt, "--kind", "unet", "--config", config, "-o", output);
            Assert.True(convert.ExitCode == 0, convert.ToString());
            Assert.Contains($"wrote {output}: LDM UNet", convert.Stdout);
            AssertReproducesTheFixture(fixture, output);

            var cfg = UNetConfig.FromOfficial(fixture.ModelConfig);
            if (cfg.NumClasses > 0)
            {
                // A converted class UNet samples through the CLI like any denoiser file.
                string samples = Path.Combine(dir, "samples");
                var sample = CliTestHost.Run("sample", "--model", output, "--classes", $"1,{cfg.NumClasses - 1}", "--num", "2", "--steps", "3", "--out", samples);
                Assert.True(sample.ExitCode == 0, sample.ToString());
                using var latents = SafetensorsFile.Open(Path.Combine(samples, "latents.safetensors"));
                Assert.Equal(new long[] { 2, cfg.InChannels, cfg.ImageSize, cfg.ImageSize }, latents.Entries["latents"].Shape);
            }
        }
    }

    [Fact]
    public void EmaOptionTakesTheLitEmaWeights()
    {
        using var fixture = FixtureCatalog.Current.Open("unet_ldm");
        string dir = RepoPaths.NewTempDir("unetconv");
        string pt = Path.Combine(dir, "ldm.pt");
        using (var weights = SafetensorsFile.Open(fixture.WeightsPath))
        {
            var official = weights.ReadAll();
            // The non-EMA weights are wrong on purpose; the EMA ones (LitEma names: no dots) are the fixture's.
            var all = official.ToDictionary(kv => UNetConversion.CompVisPrefix + kv.Key, kv => torch.zeros_like(kv.Value));
            foreach (var (key, t) in official) all[UNetConversion.CompVisEmaPrefix + key.Replace(".", "")] = t;
            all["model_ema.num_updates"] = torch.tensor(7L);
            PyTorchCheckpoint.Save(pt, all);
            foreach (var t in all.Values) t.Dispose();
        }
        string config = Path.Combine(dir, "unet.json");
        File.WriteAllText(config, fixture.ModelConfig.ToJsonString());
        string output = Path.Combine(dir, "unet.safetensors");
        var convert = CliTestHost.Run("convert", pt, "--kind", "unet", "--config", config, "--ema", "-o", output);
        Assert.True(convert.ExitCode == 0, convert.ToString());
        AssertReproducesTheFixture(fixture, output);

        var notUnet = CliTestHost.Run("convert", pt, "--kind", "dit", "--ema", "-o", Path.Combine(dir, "x.safetensors"));
        Assert.Equal(1, notUnet.ExitCode);
        Assert.Contains("--ema", notUnet.Stderr);
    }

    static void AssertReproducesTheFixture(Fixture fixture, string converted)
    {
        var (network, info) = DenoiserCheckpoint.Load(converted);
        using var model = Assert.IsType<UNetModel>(network);
        Assert.Equal(UNetConfig.FromOfficial(fixture.ModelConfig).ToJson(), info.Backbone.ToJson());
        foreach (var c in fixture.Cases.Where(c => c.Op == "forward"))
        {
            using var _ = torch.no_grad();
            Tensor? Optional(string name) => c.Inputs.ContainsKey(name) ? c.Input(name) : null;
            using var actual = model.Forward(c.Input("x"), c.Input("timesteps"), Optional("context"), Optional("y"));
            string outName = c.Outputs.Keys.Single();
            using var expected = fixture.Data.Read(c.Outputs[outName]);
            var result = TensorComparison.Compare(actual, expected, c.ToleranceFor(outName));
            Assert.True(result.Passed, $"{fixture.Name}/{c.Name}: {result.Message}");
        }
    }

    /// <summary>The diffusion an LDM checkpoint was trained with (its yaml's linear_start/linear_end) goes into the file.</summary>
    [Fact]
    public void ConversionStoresTheGivenDiffusion()
    {
        using var fixture = FixtureCatalog.Current.Open("unet_ldm");
        string dir = RepoPaths.NewTempDir("unetconv");
        var config = UNetConfig.FromOfficial(fixture.ModelConfig);
        var ldm = new Diffusion.DiffusionConfig { LearnSigma = config.LearnSigma, Schedule = "scaled_linear", BetaStart = 0.0015, BetaEnd = 0.0195 };
        string output = Path.Combine(dir, "unet.safetensors");
        UNetConversion.Convert(fixture.WeightsPath, config, output, diffusion: ldm);
        Assert.Equal(ldm with { Schedule = "scaled-linear" }, DenoiserCheckpoint.PeekInfo(output).Diffusion);
        var mismatch = Assert.Throws<LdmException>(() => UNetConversion.Convert(fixture.WeightsPath, config, Path.Combine(dir, "x.safetensors"),
            diffusion: ldm with { LearnSigma = !config.LearnSigma }));
        Assert.Contains("learn_sigma", mismatch.Message);
        Assert.False(File.Exists(Path.Combine(dir, "x.safetensors")));
    }

    [Fact]
    public void MissingConfigAndUnsupportedArgumentsAreErrors()
    {
        string dir = RepoPaths.NewTempDir("unetconv");
        using var fixture = FixtureCatalog.Current.Open("unet_ldm");
        string pt = Path.Combine(dir, "unet.pt");
        using (var weights = SafetensorsFile.Open(fixture.WeightsPath))
        {
            var all = weights.ReadAll();
            PyTorchCheckpoint.Save(pt, all);
            foreach (var t in all.Values) t.Dispose();
        }
        var noConfig = CliTestHost.Run("convert", pt, "--kind", "unet", "-o", Path.Combine(dir, "x.safetensors"));
        Assert.Equal(1, noConfig.ExitCode);
        Assert.Contains("--config", noConfig.Stderr);

        var args = (JsonObject)fixture.ModelConfig.DeepClone();
        args["use_new_attention_order"] = true;
        string config = Path.Combine(dir, "bad.json");
        File.WriteAllText(config, args.ToJsonString());
        var unsupported = CliTestHost.Run("convert", pt, "--kind", "unet", "--config", config, "-o", Path.Combine(dir, "x.safetensors"));
        Assert.Equal(1, unsupported.ExitCode);
        Assert.Contains("use_new_attention_order", unsupported.Stderr);
        Assert.False(File.Exists(Path.Combine(dir, "x.safetensors")));
    }
}
