using System.Collections;
using System.Text.Json.Nodes;
using LatentDiffusion.Autoencoders;
using LatentDiffusion.Evaluation;
using LatentDiffusion.IO;
using LatentDiffusion.Pipelines;
using LatentDiffusion.Transformers;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests.Autoencoders;

/// <summary>
/// The latent round trip end to end: the official tiny DiT (dit_forward fixture) and the official tiny KL autoencoder
/// (autoencoder_kl fixture, imported from a CompVis-style .ckpt) turn class labels into PNGs through `ldm sample`.
/// </summary>
[Collection(ConsoleCollection.Name)]
public sealed class LatentSamplingCommandTests
{
    static string AeFixture => Path.Combine(RepoPaths.Fixtures, "autoencoder_kl");

    /// <summary>The fixture DiT as a denoiser checkpoint (latent 8×8×4), via `ldm convert --kind dit`.</summary>
    static string ConvertedDiT(string dir)
    {
        string pt = Path.Combine(dir, "DiT-tiny.pt"), output = Path.Combine(dir, "dit.safetensors");
        using (var weights = SafetensorsFile.Open(Path.Combine(RepoPaths.Fixtures, "dit_forward", "weights.safetensors")))
            PyTorchCheckpoint.Save(pt, weights.ReadAll());
        var r = CliTestHost.Run("convert", pt, "--kind", "dit", "--num-heads", "4", "-o", output);
        Assert.True(r.ExitCode == 0, r.ToString());
        return output;
    }

    /// <summary>
    /// A Stable-Diffusion-style .ckpt: {"state_dict": {first_stage_model.* = the fixture autoencoder, model.diffusion_model.*
    /// = unrelated tensors}, "global_step": 7}.
    /// </summary>
    internal static string WriteSdStyleCkpt(string dir)
    {
        string path = Path.Combine(dir, "sd-style.ckpt");
        var stateDict = new Hashtable();
        using var weights = SafetensorsFile.Open(Path.Combine(AeFixture, "weights.safetensors"));
        foreach (var (name, t) in weights.ReadAll()) stateDict["first_stage_model." + name] = t;
        stateDict["model.diffusion_model.input_blocks.0.0.weight"] = torch.ones(8, 4, 3, 3);
        stateDict["model.diffusion_model.out.2.bias"] = torch.zeros(4);
        stateDict["cond_stage_model.transformer.text_model.embeddings.position_ids"] = torch.arange(77).unsqueeze(0);
        var root = new Hashtable { ["state_dict"] = stateDict, ["global_step"] = 7 };
        using (var fs = File.Create(path)) PyTorchPickler.PickleStateDict(fs, root);
        return path;
    }

    /// <summary>The fixture autoencoder as our checkpoint, via `ldm convert --kind autoencoder` of the .ckpt with the
    /// manifest's ddconfig/embed_dim as the config file.</summary>
    static string ConvertedAutoencoder(string dir)
    {
        var manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(AeFixture, "manifest.json")))!;
        string configPath = Path.Combine(dir, "ae-config.json");
        File.WriteAllText(configPath, manifest["model"]!["config"]!.ToJsonString());
        string output = Path.Combine(dir, "ae.safetensors");
        var r = CliTestHost.Run("convert", WriteSdStyleCkpt(dir), "--kind", "autoencoder", "--config", configPath, "--scale-factor", "0.5", "-o", output);
        Assert.True(r.ExitCode == 0, r.ToString());
        return output;
    }

    [Fact]
    public void TheFixtureDiTAndTheFixtureAutoencoderMakePngsThroughSample()
    {
        using var threads = new SingleTorchThread();
        string dir = RepoPaths.NewTempDir("latent-sample");
        string dit = ConvertedDiT(dir), ae = ConvertedAutoencoder(dir);

        string pngDir = Path.Combine(dir, "png");
        var r = CliTestHost.Run("sample", "--model", dit, "--autoencoder", ae, "--classes", "1,2", "--num", "2", "--steps", "3", "--out", pngDir);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("decoded by the autoencoder", r.Stdout);
        var pngs = Directory.GetFiles(pngDir, "*.png").Select(Path.GetFileName).Order().ToList();
        Assert.Equal(["00000_001_class1.png", "00001_002_class2.png", "grid.png"], pngs);
        Assert.False(File.Exists(Path.Combine(pngDir, "latents.safetensors")));

        // The same seed without the autoencoder gives the latents; decode(z / scale) of them must be the PNGs.
        string latentDir = Path.Combine(dir, "latent");
        var l = CliTestHost.Run("sample", "--model", dit, "--classes", "1,2", "--num", "2", "--steps", "3", "--out", latentDir);
        Assert.True(l.ExitCode == 0, l.ToString());
        Assert.Contains("--autoencoder", l.Stdout);
        using var latents = SafetensorsFile.Open(Path.Combine(latentDir, "latents.safetensors"));
        using var z = latents.Read("latents");
        using var model = AutoencoderKL.Load(ae);
        Assert.Equal(0.5, model.LatentScale);
        using var _ = torch.no_grad();
        using var expected = model.Decode(z / 0.5).clamp(-1, 1);
        for (int i = 0; i < 2; i++)
        {
            using var png = ImageFile.Read(Path.Combine(pngDir, pngs[i]!), 3);
            Assert.Equal([3L, 16, 16], png.shape);
            double err = (png - expected[i]).abs().max().item<float>();
            Assert.True(err <= 1.01 / 127.5, $"PNG {i} differs from decode(z / scale) by {err}");
        }
        using var grid = ImageFile.Read(Path.Combine(pngDir, "grid.png"), 3);
        // One 16×16 tile per class: two rows of one (the default puts each listed class on its own row).
        Assert.True(grid.shape[1] >= 32 && grid.shape[2] is >= 16 and < 32, $"grid is {string.Join("x", grid.shape)}");
    }

    [Fact]
    public void MismatchedAutoencodersAndPixelModelsAreRefusedBeforeSampling()
    {
        using var threads = new SingleTorchThread();
        string dir = RepoPaths.NewTempDir("latent-sample-bad");
        string dit = ConvertedDiT(dir);
        // f=2 on 32×32 images: latents of 4×16×16, not the DiT's 4×8×8.
        string wrongAe = Path.Combine(dir, "ae32.safetensors");
        using (var ae = new AutoencoderKL(AutoencoderKeysTests.Tiny with { Resolution = 32 })) ae.Save(wrongAe);
        var r = CliTestHost.Run("sample", "--model", dit, "--autoencoder", wrongAe, "--num", "1", "--steps", "2", "--out", Path.Combine(dir, "o1"));
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("4x16x16", r.Stderr);
        Assert.Contains("4x8x8", r.Stderr);
        Assert.Single(r.Stderr.TrimEnd().Split('\n'));
        Assert.False(Directory.Exists(Path.Combine(dir, "o1")) && Directory.EnumerateFiles(Path.Combine(dir, "o1")).Any());

        string goodAe = Path.Combine(dir, "ae16.safetensors");
        using (var ae = new AutoencoderKL(AutoencoderKeysTests.Tiny)) ae.Save(goodAe);
        string pixel = TinyModels.SaveCheckpoint(dir, "pixel");
        r = CliTestHost.Run("sample", "--model", pixel, "--autoencoder", goodAe, "--num", "1", "--steps", "2", "--out", Path.Combine(dir, "o2"));
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("pixel-space", r.Stderr);
        Assert.Contains("drop --autoencoder", r.Stderr);

        r = CliTestHost.Run("sample", "--model", dit, "--autoencoder", Path.Combine(dir, "missing.safetensors"), "--num", "1", "--out", Path.Combine(dir, "o3"));
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("--autoencoder", r.Stderr);
    }

    [Fact]
    public void EvaluateDecodesALatentModelWithTheAutoencoder()
    {
        using var threads = new SingleTorchThread();
        string dir = RepoPaths.NewTempDir("latent-eval");
        string dit = ConvertedDiT(dir), ae = ConvertedAutoencoder(dir);
        string clf = Path.Combine(dir, "clf.safetensors");
        var clfConfig = new DomainClassifierConfig
        {
            Channels = 3, ImageSize = 16, ClassNames = Enumerable.Range(0, 10).Select(i => $"c{i}").ToArray(), Widths = [8, 16], FeatureDim = 16,
        };
        using (var classifier = DomainClassifierTrainer.Create(clfConfig, seed: 2)) classifier.Save(clf);
        using var g = new Generator(3);
        using var refImages = torch.randint(0, 256, [6, 16, 16, 3], generator: g).to(ScalarType.Byte);
        string refNpz = Path.Combine(dir, "ref.npz");
        Npz.Write(refNpz, new Dictionary<string, Tensor> { ["arr_0"] = refImages });
        string json = Path.Combine(dir, "report.json");

        var r = CliTestHost.Run("evaluate", "--model", dit, "--autoencoder", ae, "--num", "4", "--classes", "1,2", "--steps", "2",
            "--guidance", "1", "--batch-size", "4", "--features", $"classifier:{clf}", "--reference", refNpz, "--no-precision-recall", "--out", json);
        Assert.True(r.ExitCode == 0, r.ToString());
        var report = EvaluationReport.Load(json);
        Assert.Equal(4, report.SampleCount);
        Assert.True(double.IsFinite(report.Metrics["fid"]));

        r = CliTestHost.Run("evaluate", "--model", dit, "--num", "4", "--features", $"classifier:{clf}", "--reference", refNpz, "--out", json);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("--autoencoder", r.Stderr);
    }
}

/// <summary>Autoencoder weights from a CompVis / Stable Diffusion .ckpt (torch.save of {"state_dict": ...}).</summary>
public sealed class AutoencoderCkptImportTests
{
    [Fact]
    public void ReadsFirstStageWeightsOfASdCkptAndIgnoresTheRest()
    {
        string dir = RepoPaths.NewTempDir("ae-ckpt");
        string ckpt = LatentSamplingCommandTests.WriteSdStyleCkpt(dir);
        var dict = AutoencoderImport.ReadStateDict(ckpt);
        Assert.Contains("first_stage_model.encoder.conv_in.weight", dict.Keys);
        Assert.Contains("model.diffusion_model.out.2.bias", dict.Keys);

        var manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(RepoPaths.Fixtures, "autoencoder_kl", "manifest.json")))!;
        var config = AutoencoderConfig.FromJson(manifest["model"]!["config"]!.AsObject());
        using var model = AutoencoderImport.FromFile(ckpt, config, 0.25);
        Assert.Equal(0.25, model.LatentScale);
        // The imported model reproduces the fixture's official decode of the posterior mean.
        using var data = SafetensorsFile.Open(Path.Combine(RepoPaths.Fixtures, "autoencoder_kl", "data.safetensors"));
        using var _ = torch.no_grad();
        using var image = model.Decode(data.Read("decode_mean.z"));
        double err = (image - data.Read("decode_mean.image")).abs().max().item<float>();
        Assert.True(err < 1e-4, $"decode differs from the official output by {err}");
        foreach (var t in dict.Values) t.Dispose();
    }
}
