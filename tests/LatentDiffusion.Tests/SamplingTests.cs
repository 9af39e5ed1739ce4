using LatentDiffusion.Denoisers;
using LatentDiffusion.Diffusion;
using LatentDiffusion.IO;
using LatentDiffusion.Pipelines;
using LatentDiffusion.Transformers;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests;

/// <summary>
/// Class-conditional sampling on a tiny random Transformer: seeds, bf16, memory over many steps, and `ldm sample`
/// end to end for pixel-space and latent-space checkpoints.
/// </summary>
[Collection(ConsoleCollection.Name)]
public sealed class SamplingTests(ITestOutputHelper output) : IDisposable
{
    readonly SingleTorchThread _threads = new();
    readonly string _dir = RepoPaths.NewTempDir("sampling");

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
        _threads.Dispose();
    }

    static readonly int[] Labels = [0, 3, 7, 11, 5, 5];

    static Tensor Sample(SamplingOptions options, TransformerConfig? cfg = null, ScalarType? dtype = null)
    {
        cfg ??= TinyModels.Config();
        using var model = TinyModels.RandomModel(cfg);
        using var pipe = DiffusionPipeline.FromModels(model, TinyModels.Info(cfg), dtype: dtype);
        using var images = pipe.Generate(Labels, options);
        return images.Images.alias();
    }

    static bool BitEqual(Tensor a, Tensor b) => a.dtype == b.dtype && a.shape.SequenceEqual(b.shape) && a.equal(b).all().item<bool>();

    [Theory]
    [InlineData(SamplerKind.Ddim, 0.0)]
    [InlineData(SamplerKind.Ddim, 1.0)]
    [InlineData(SamplerKind.Ddpm, 0.0)]
    [InlineData(SamplerKind.DpmSolverPP2M, 0.0)]
    public void SameSeed_BitIdentical_OtherSeedDiffers(SamplerKind sampler, double eta)
    {
        var options = new SamplingOptions { Sampler = sampler, Eta = eta, Steps = 6, GuidanceScale = 3.0, Seed = 42, BatchSize = 4 };
        using var a = Sample(options);
        using var b = Sample(options);
        using var c = Sample(options with { Seed = 43 });
        Assert.Equal([Labels.Length, 3L, 8, 8], a.shape);
        Assert.True(BitEqual(a, b), "same seed gave different samples");
        Assert.False(BitEqual(a, c), "another seed gave the same samples");
        Assert.True(a.isfinite().all().item<bool>());
    }

    [Fact]
    public void Bf16Sampling_IsCloseToFloat32()
    {
        // One network evaluation: bf16 keeps 8 bits of mantissa, so about 1% relative error is expected.
        var cfg = TinyModels.Config();
        double forwardRel;
        using (var scope = torch.NewDisposeScope())
        using (var model = TinyModels.RandomModel(cfg))
        using (var low = TinyModels.RandomModel(cfg))
        using (torch.no_grad())
        {
            low.to(ScalarType.BFloat16);
            var g = new Generator(2);
            var x = torch.randn([6, 3, 8, 8], generator: g);
            var t = torch.tensor(new long[] { 0, 100, 300, 500, 700, 999 });
            var y = torch.tensor(Labels.Select(l => (long)l).ToArray());
            var reference = model.forward(x, t, y);
            forwardRel = (low.forward(x, t, y).to(ScalarType.Float32) - reference).abs().max().item<float>() / reference.abs().max().item<float>();
        }
        // Whole sampling runs: the error of each step is carried (and at high noise amplified by the x0 prediction).
        var options = new SamplingOptions { Steps = 10, GuidanceScale = 1.0, Seed = 5, BatchSize = 6 };
        using var f32 = Sample(options);
        using var b16 = Sample(options, dtype: ScalarType.BFloat16);
        using var f32g = Sample(options with { GuidanceScale = 3.0 });
        using var b16g = Sample(options with { GuidanceScale = 3.0 }, dtype: ScalarType.BFloat16);
        Assert.Equal(ScalarType.Float32, b16.dtype);
        double maxDiff = (f32 - b16).abs().max().item<float>(), meanDiff = (f32 - b16).abs().mean().item<float>();
        double maxDiffG = (f32g - b16g).abs().max().item<float>(), meanDiffG = (f32g - b16g).abs().mean().item<float>();
        output.WriteLine($"bf16 vs float32 on a tiny random model: one forward max relative diff {forwardRel:G3}; 10 DDIM steps, guidance 1: max |diff| {maxDiff:G3}, mean {meanDiff:G3}; guidance 3: max {maxDiffG:G3}, mean {meanDiffG:G3} (samples in [-1, 1])");
        Assert.True(forwardRel < 0.03, $"bf16 forward differs from float32 by {forwardRel:P1} of the output range");
        Assert.True(forwardRel > 0, "the bf16 model gave exactly the float32 result; was it converted at all?");
        Assert.True(meanDiff < 0.05, $"bf16 samples differ from float32 by {meanDiff} on average");
        Assert.True(maxDiff > 0, "bf16 sampling gave exactly the float32 result; was the model converted at all?");
    }

    [Fact]
    public void Sampler_LiveTensorsStayFlatOverManySteps()
    {
        var cfg = TinyModels.Config();
        using var model = TinyModels.RandomModel(cfg);
        using var pipe = DiffusionPipeline.FromModels(model, TinyModels.Info(cfg));
        using var scope = torch.NewDisposeScope();
        long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount, early = 0, late = 0;
        const int steps = 200;
        using var samples = pipe.Generate(Labels, new SamplingOptions { Sampler = SamplerKind.Ddpm, Steps = steps, GuidanceScale = 2.0, Seed = 1, BatchSize = 3 },
            p =>
            {
                if (p.ImagesDone == 3 && p.Step == 10) early = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
                if (p.ImagesDone == 3 && p.Step == steps - 10) late = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
            });
        output.WriteLine($"live tensors: before {before}, step 10 of batch 2: {early}, step {steps - 10}: {late}");
        Assert.True(early > 0 && late > 0, "the step callback did not run");
        Assert.True(late - early <= 2, $"live tensors grew from {early} to {late} over {steps - 20} sampling steps");
    }

    [Fact]
    public void LdmSample_PixelCheckpoint_WritesPngsAndGrid()
    {
        string model = TinyModels.SaveCheckpoint(_dir);
        string outDir = Path.Combine(_dir, "samples");
        var r = CliTestHost.Run("sample", "--model", model, "--out", outDir, "--classes", "0,5,11", "--num", "6", "--steps", "4", "--seed", "3");
        Assert.True(r.ExitCode == 0, r.ToString());
        var pngs = Directory.GetFiles(outDir, "*.png").Select(Path.GetFileName).Order().ToList();
        Assert.Contains("grid.png", pngs);
        var singles = pngs.Where(p => p != "grid.png").ToList();
        Assert.Equal(6, singles.Count);
        Assert.All(singles, p => Assert.Matches(@"^\d{5}_\d{3}_.+\.png$", p));
        Assert.Equal(2, singles.Count(p => p!.Contains("_011_")));
        Assert.Contains(Path.Combine(outDir, "grid.png"), r.Stdout);
        Assert.Empty(Directory.GetFiles(outDir, "*.tmp"));
        Assert.Empty(r.Stderr);

        // Same seed, same files.
        string again = Path.Combine(_dir, "again");
        Assert.Equal(0, CliTestHost.Run("sample", "--model", model, "--out", again, "--classes", "0,5,11", "--num", "6", "--steps", "4", "--seed", "3").ExitCode);
        foreach (var p in pngs)
            Assert.Equal(File.ReadAllBytes(Path.Combine(outDir, p!)), File.ReadAllBytes(Path.Combine(again, p!)));
    }

    [Fact]
    public void LdmSample_LatentCheckpoint_WritesLatentsFile()
    {
        string model = TinyModels.SaveCheckpoint(_dir, space: "latent", channels: 4);
        string outDir = Path.Combine(_dir, "latents");
        var r = CliTestHost.Run("sample", "--model", model, "--out", outDir, "--classes", "2", "--num", "3", "--steps", "3", "--dtype", "bf16");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(["latents.safetensors"], Directory.GetFiles(outDir).Select(Path.GetFileName));
        using var file = SafetensorsFile.Open(Path.Combine(outDir, "latents.safetensors"));
        using var latents = file.Read("latents");
        using var labels = file.Read("labels");
        Assert.Equal([3L, 4, 8, 8], latents.shape);
        Assert.Equal(ScalarType.Float32, latents.dtype);
        Assert.Equal([2L, 2, 2], labels.data<long>().ToArray());
        Assert.Equal("latent", file.Metadata["ldm.space"]);
        Assert.Contains("latents.safetensors", r.Stdout);
    }
}
