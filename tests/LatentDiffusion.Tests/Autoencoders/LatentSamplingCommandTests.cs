using System.Collections;
using LatentDiffusion.Autoencoders;
using LatentDiffusion.Evaluation;
using LatentDiffusion.IO;
using LatentDiffusion.Pipelines;
using LatentDiffusion.Tests.Fixtures;
using LatentDiffusion.Transformers;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests.Autoencoders;

/// <summary>
/// The latent round trip end to end: an official tiny DiT (a `dit` fixture) and an official tiny KL autoencoder
/// (an `autoencoder_kl` fixture whose latents fit that DiT, imported from a CompVis-style .ckpt) turn class labels
/// into PNGs through `ldm sample`. Sizes, head counts and class counts come from the fixtures' manifests.
/// </summary>
[Collection(ConsoleCollection.Name)]
public sealed class LatentSamplingCommandTests
{
    /// <summary>The fixture DiT as a denoiser checkpoint, via `ldm convert --kind dit`; and its config.</summary>
    static (string Path, TransformerConfig Config) ConvertedDiT(string dir)
    {
        using var fixture = FixtureCatalog.Current.Open("dit");
        var (pt, config) = FixtureDiTCheckpoint.Write(fixture, dir);
        string output = Path.Combine(dir, "dit.safetensors");
        var r = CliTestHost.Run("convert", pt, "--kind", "dit", "--num-heads", config.NumHeads.ToString(), "-o", output);
        Assert.True(r.ExitCode == 0, r.ToString());
        return (output, config);
    }

    /// <summary>An autoencoder fixture whose latents (embed_dim × resolution/f²) are the inputs of the given DiT.</summary>
    static Fixture OpenAutoencoderFixtureFor(TransformerConfig dit) => FixtureCatalog.Current.Open("autoencoder_kl",
        f => AutoencoderConfig.FromJson(f.ModelConfig) is var c && c.EmbedDim == dit.InChannels && c.LatentResolution == dit.InputSize,
        $"latents of {dit.InChannels}x{dit.InputSize}x{dit.InputSize} (the inputs of the dit fixture)");

    /// <summary>Two class labels the DiT has (1 and 2 when it has that many).</summary>
    static int[] TwoClasses(TransformerConfig dit) => [1 % dit.NumClasses, 2 % dit.NumClasses];

    /// <summary>
    /// A Stable-Diffusion-style .ckpt: {"state_dict": {first_stage_model.* = the fixture autoencoder, model.diffusion_model.*
    /// = unrelated tensors}, "global_step": 7}.
    /// </summary>
    internal static string WriteSdStyleCkpt(string dir, Fixture autoencoder)
    {
        string path = Path.Combine(dir, "sd-style.ckpt");
        var stateDict = new Hashtable();
        using var weights = SafetensorsFile.Open(autoencoder.WeightsPath);
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
    static (string Path, AutoencoderConfig Config) ConvertedAutoencoder(string dir, TransformerConfig dit)
    {
        using var fixture = OpenAutoencoderFixtureFor(dit);
        string configPath = Path.Combine(dir, "ae-config.json");
        File.WriteAllText(configPath, fixture.ModelConfig.ToJsonString());
        string output = Path.Combine(dir, "ae.safetensors");
        var r = CliTestHost.Run("convert", WriteSdStyleCkpt(dir, fixture), "--kind", "autoencoder", "--config", configPath, "--scale-factor", "0.5", "-o", output);
        Assert.True(r.ExitCode == 0, r.ToString());
        return (output, AutoencoderConfig.FromJson(fixture.ModelConfig));
    }

    [Fact]
    public void TheFixtureDiTAndTheFixtureAutoencoderMakePngsThroughSample()
    {
        using var threads = new SingleTorchThread();
        string dir = RepoPaths.NewTempDir("latent-sample");
        var (dit, ditConfig) = ConvertedDiT(dir);
        var (ae, aeConfig) = ConvertedAutoencoder(dir, ditConfig);
        int[] classes = TwoClasses(ditConfig);
        int side = aeConfig.Resolution, channels = aeConfig.OutCh;

        string pngDir = Path.Combine(dir, "png");
        var r = CliTestHost.Run("sample", "--model", dit, "--autoencoder", ae, "--classes", string.Join(",", classes), "--num", "2", "--steps", "3", "--out", pngDir);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("decoded by the autoencoder", r.Stdout);
        var pngs = Directory.GetFiles(pngDir, "*.png").Select(Path.GetFileName).Order().ToList();
        Assert.Equal([$"00000_{classes[0]:D3}_class{classes[0]}.png", $"00001_{classes[1]:D3}_class{classes[1]}.png", "grid.png"], pngs);
        Assert.False(File.Exists(Path.Combine(pngDir, "latents.safetensors")));

        // The same seed without the autoencoder gives the latents; decode(z / scale) of them must be the PNGs.
        string latentDir = Path.Combine(dir, "latent");
        var l = CliTestHost.Run("sample", "--model", dit, "--classes", string.Join(",", classes), "--num", "2", "--steps", "3", "--out", latentDir);
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
            using var png = ImageFile.Read(Path.Combine(pngDir, pngs[i]!), channels);
            Assert.Equal([channels, side, side], png.shape);
            double err = (png - expected[i]).abs().max().item<float>();
            Assert.True(err <= 1.01 / 127.5, $"PNG {i} differs from decode(z / scale) by {err}");
        }
        using var grid = ImageFile.Read(Path.Combine(pngDir, "grid.png"), channels);
        // One side×side tile per class: two rows of one (the default puts each listed class on its own row).
        Assert.True(grid.shape[1] >= 2 * side && grid.shape[2] >= side && grid.shape[2] < 2 * side, $"grid is {string.Join("x", grid.shape)}");
    }

    [Fact]
    public void MismatchedAutoencodersAndPixelModelsAreRefusedBeforeSampling()
    {
        using var threads = new SingleTorchThread();
        string dir = RepoPaths.NewTempDir("latent-sample-bad");
        var (dit, ditConfig) = ConvertedDiT(dir);
        // Latents twice as wide as the DiT's inputs (e.g. f=2 on 32×32 images: 4×16×16 for a DiT on 4×8×8).
        var wrong = AutoencoderKeysTests.Tiny with { Resolution = 2 * ditConfig.InputSize * AutoencoderKeysTests.Tiny.DownsampleFactor };
        string wrongAe = Path.Combine(dir, "ae-wrong.safetensors");
        using (var ae = new AutoencoderKL(wrong)) ae.Save(wrongAe);
        var r = CliTestHost.Run("sample", "--model", dit, "--autoencoder", wrongAe, "--num", "1", "--steps", "2", "--out", Path.Combine(dir, "o1"));
        Assert.Equal(1, r.ExitCode);
        Assert.Contains($"{wrong.EmbedDim}x{wrong.LatentResolution}x{wrong.LatentResolution}", r.Stderr);
        Assert.Contains($"{ditConfig.InChannels}x{ditConfig.InputSize}x{ditConfig.InputSize}", r.Stderr);
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
        var (dit, ditConfig) = ConvertedDiT(dir);
        var (ae, aeConfig) = ConvertedAutoencoder(dir, ditConfig);
        string clf = Path.Combine(dir, "clf.safetensors");
        var clfConfig = new DomainClassifierConfig
        {
            Channels = aeConfig.OutCh, ImageSize = aeConfig.Resolution, ClassNames = Enumerable.Range(0, ditConfig.NumClasses).Select(i => $"c{i}").ToArray(),
            Widths = [8, 16], FeatureDim = 16,
        };
        using (var classifier = DomainClassifierTrainer.Create(clfConfig, seed: 2)) classifier.Save(clf);
        using var g = new Generator(3);
        using var refImages = torch.randint(0, 256, [6, aeConfig.Resolution, aeConfig.Resolution, aeConfig.OutCh], generator: g).to(ScalarType.Byte);
        string refNpz = Path.Combine(dir, "ref.npz");
        Npz.Write(refNpz, new Dictionary<string, Tensor> { ["arr_0"] = refImages });
        string json = Path.Combine(dir, "report.json");

        var r = CliTestHost.Run("evaluate", "--model", dit, "--autoencoder", ae, "--num", "4", "--classes", string.Join(",", TwoClasses(ditConfig)), "--steps", "2",
            "--guidance", "1", "--batch-size", "4", "--features", $"classifier:{clf}", "--reference", refNpz, "--no-precision-recall", "--out", json);
        Assert.True(r.ExitCode == 0, r.ToString());
        var report = EvaluationReport.Load(json);
        Assert.Equal(4, report.SampleCount);
        Assert.True(double.IsFinite(report.Metrics["fid"]));
        // A latent model's evaluation also measures its autoencoder alone on the reference images.
        Assert.True(double.IsFinite(report.Metrics["reconstruction_fid"]));
        Assert.True(report.Metrics["reconstruction_psnr"] is > 0 and < 60);

        r = CliTestHost.Run("evaluate", "--model", dit, "--autoencoder", ae, "--num", "2", "--steps", "2", "--guidance", "1", "--batch-size", "2",
            "--features", $"classifier:{clf}", "--reference", refNpz, "--no-precision-recall", "--no-reconstruction", "--out", json);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.DoesNotContain("reconstruction_fid", EvaluationReport.Load(json).Metrics.Keys);

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
        using var fixture = FixtureCatalog.Current.Open("autoencoder_kl", f => f.CaseWithOp("decode", "z") != null, "a decode(z) case");
        string ckpt = LatentSamplingCommandTests.WriteSdStyleCkpt(dir, fixture);
        var dict = AutoencoderImport.ReadStateDict(ckpt);
        Assert.Contains("first_stage_model.encoder.conv_in.weight", dict.Keys);
        Assert.Contains("model.diffusion_model.out.2.bias", dict.Keys);

        var config = AutoencoderConfig.FromJson(fixture.ModelConfig);
        using var model = AutoencoderImport.FromFile(ckpt, config, 0.25);
        Assert.Equal(0.25, model.LatentScale);
        // The imported model reproduces the fixture's official decode of the given z (e.g. the posterior mean).
        var decode = fixture.CaseWithOp("decode", "z")!;
        var (outName, tensorName) = decode.Outputs.Single();
        using var _ = torch.no_grad();
        using var image = model.Decode(decode.Input("z"));
        var r = TensorComparison.Compare(image, fixture.Data.Read(tensorName), decode.ToleranceFor(outName));
        Assert.True(r.Passed, $"{fixture.Name}/{decode.Name}: decode differs from the official output: {r.Message}");
        foreach (var t in dict.Values) t.Dispose();
    }
}
