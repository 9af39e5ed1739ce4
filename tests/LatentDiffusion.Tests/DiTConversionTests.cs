using LatentDiffusion.Denoisers;
using LatentDiffusion.Diffusion;
using LatentDiffusion.IO;
using LatentDiffusion.Tests.Fixtures;
using LatentDiffusion.Transformers;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests;

/// <summary>An official DiT state dict saved as a PyTorch .pt file converts into a denoiser checkpoint that
/// reproduces the official forward pass (a `dit` fixture's weights, inputs and outputs; sizes from its manifest).</summary>
public class DiTConversionTests
{
    /// <summary>A dit fixture with a forward(x, t, y) case.</summary>
    static Fixture OpenFixture() => FixtureCatalog.Current.Open("dit", f => ForwardCase(f) != null, "a forward(x, t, y) case");

    static FixtureCase? ForwardCase(Fixture f) => f.CaseWithOp("forward", "x", "t", "y");

    [Fact]
    public void ConvertsAnOfficialPtStateDictAndKeepsTheForwardPass()
    {
        using var fixture = OpenFixture();
        var forward = ForwardCase(fixture)!;
        string dir = RepoPaths.NewTempDir("ditconv");
        var (pt, expected) = FixtureDiTCheckpoint.Write(fixture, dir);
        string output = Path.Combine(dir, "dit.safetensors");

        var config = DiTConversion.Convert(pt, output, numHeads: expected.NumHeads);
        Assert.Equal(BlockType.AdaLnZero, config.Block);
        Assert.Equal((expected.InputSize, expected.PatchSize, expected.InChannels, expected.HiddenSize, expected.Depth, expected.NumHeads, expected.NumClasses, expected.LearnSigma),
            (config.InputSize, config.PatchSize, config.InChannels, config.HiddenSize, config.Depth, config.NumHeads, config.NumClasses, config.LearnSigma));

        var (model, info) = DenoiserCheckpoint.Load(output);
        using (model)
        using (torch.no_grad())
        {
            Assert.Equal(DataSpace.Latent, info.Space);
            Assert.Equal(new RecommendedSampling { Sampler = SamplerKind.Ddpm, Steps = 250, GuidanceScale = 4.0 }, info.Sampling);
            using var outp = model.forward(forward.Input("x"), forward.Input("t"), forward.Input("y"));
            var (outName, tensorName) = forward.Outputs.Single();
            var r = TensorComparison.Compare(outp, fixture.Data.Read(tensorName), forward.ToleranceFor(outName));
            Assert.True(r.Passed, $"{fixture.Name}/{forward.Name}: the converted model differs from the official output: {r.Message}");
        }
    }

    [Fact]
    public void AHeadCountOutsideThePresetsMustBeGiven()
    {
        using var fixture = OpenFixture();
        string dir = RepoPaths.NewTempDir("ditconv");
        var (pt, _) = FixtureDiTCheckpoint.Write(fixture, dir);
        var e = Assert.Throws<LdmOptionException>(() => DiTConversion.Convert(pt, Path.Combine(dir, "out.safetensors")));
        Assert.Equal("NumHeads", e.Property);
        Assert.False(File.Exists(Path.Combine(dir, "out.safetensors")));
    }

    [Fact]
    public void ANonDiTFileIsRefusedByName()
    {
        string dir = RepoPaths.NewTempDir("ditconv");
        string pt = Path.Combine(dir, "other.pt");
        PyTorchCheckpoint.Save(pt, new Dictionary<string, Tensor> { ["encoder.conv_in.weight"] = torch.zeros(2, 2) });
        var e = Assert.Throws<LdmException>(() => DiTConversion.Convert(pt, Path.Combine(dir, "out.safetensors")));
        Assert.Contains("not an official DiT", e.Message);
    }
}

/// <summary>`ldm convert --kind dit` end to end, then `ldm sample` from the converted file.</summary>
[Collection(ConsoleCollection.Name)]
public class DiTConvertCommandTests
{
    [Fact]
    public void ConvertThenSampleWritesLatents()
    {
        string dir = RepoPaths.NewTempDir("ditcli");
        using var fixture = FixtureCatalog.Current.Open("dit");
        var (pt, config) = FixtureDiTCheckpoint.Write(fixture, dir);
        string output = Path.Combine(dir, "dit.safetensors");

        var convert = CliTestHost.Run("convert", pt, "--kind", "dit", "--num-heads", config.NumHeads.ToString(), "-o", output);
        Assert.True(convert.ExitCode == 0, convert.Stderr);
        Assert.Contains($"wrote {output}: {FixtureDiTCheckpoint.ConvertSummary(config)}", convert.Stdout);

        string samples = Path.Combine(dir, "samples");
        string classes = string.Join(",", new[] { 1, 6 }.Select(c => c % config.NumClasses));
        var sample = CliTestHost.Run("sample", "--model", output, "--classes", classes, "--num", "2", "--steps", "3", "--out", samples);
        Assert.True(sample.ExitCode == 0, sample.Stderr);
        using var latents = SafetensorsFile.Open(Path.Combine(samples, "latents.safetensors"));
        Assert.Equal(new long[] { 2, config.InChannels, config.InputSize, config.InputSize }, latents.Entries["latents"].Shape);

        var missingHeads = CliTestHost.Run("convert", pt, "--kind", "dit", "-o", Path.Combine(dir, "x.safetensors"));
        Assert.Equal(1, missingHeads.ExitCode);
        Assert.Contains("--num-heads", missingHeads.Stderr);
        Assert.False(File.Exists(Path.Combine(dir, "x.safetensors")));
    }
}
