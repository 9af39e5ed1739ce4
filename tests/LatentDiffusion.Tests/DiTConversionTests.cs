using LatentDiffusion.IO;
using LatentDiffusion.Transformers;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests;

/// <summary>An official DiT state dict saved as a PyTorch .pt file converts into a denoiser checkpoint that
/// reproduces the official forward pass (the dit_forward fixture's weights, inputs and outputs).</summary>
public class DiTConversionTests
{
    static string FixtureDir => Path.Combine(RepoPaths.Fixtures, "dit_forward");

    [Fact]
    public void ConvertsAnOfficialPtStateDictAndKeepsTheForwardPass()
    {
        Assert.True(Directory.Exists(FixtureDir), $"fixture folder missing: {FixtureDir}");
        string dir = RepoPaths.NewTempDir("ditconv");
        string pt = Path.Combine(dir, "DiT-tiny.pt"), output = Path.Combine(dir, "dit.safetensors");
        using (var weights = SafetensorsFile.Open(Path.Combine(FixtureDir, "weights.safetensors")))
            PyTorchCheckpoint.Save(pt, weights.ReadAll());

        var config = DiTConversion.Convert(pt, output, numHeads: 4);
        Assert.Equal(BlockType.AdaLnZero, config.Block);
        Assert.Equal((8, 2, 4, 64, 2, 10, true), (config.InputSize, config.PatchSize, config.InChannels, config.HiddenSize, config.Depth, config.NumClasses, config.LearnSigma));

        var (model, info) = TransformerCheckpoint.Load(output);
        using (model)
        using (var data = SafetensorsFile.Open(Path.Combine(FixtureDir, "data.safetensors")))
        using (torch.no_grad())
        {
            Assert.Equal("latent", info.Space);
            var outp = model.forward(data.Read("forward.x"), data.Read("forward.t"), data.Read("forward.y"));
            double err = (outp - data.Read("forward.out")).abs().max().item<float>();
            Assert.True(err < 4e-5, $"converted model differs from the official output by {err}");
        }
    }

    [Fact]
    public void AHeadCountOutsideThePresetsMustBeGiven()
    {
        string dir = RepoPaths.NewTempDir("ditconv");
        string pt = Path.Combine(dir, "DiT-tiny.pt");
        using (var weights = SafetensorsFile.Open(Path.Combine(FixtureDir, "weights.safetensors")))
            PyTorchCheckpoint.Save(pt, weights.ReadAll());
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
        string pt = Path.Combine(dir, "DiT-tiny.pt"), output = Path.Combine(dir, "dit.safetensors");
        using (var weights = SafetensorsFile.Open(Path.Combine(RepoPaths.Fixtures, "dit_forward", "weights.safetensors")))
            PyTorchCheckpoint.Save(pt, weights.ReadAll());

        var convert = CliTestHost.Run("convert", pt, "--kind", "dit", "--num-heads", "4", "-o", output);
        Assert.True(convert.ExitCode == 0, convert.Stderr);
        Assert.Contains("DiT (adaLN-Zero) depth 2, width 64, heads 4", convert.Stdout);

        string samples = Path.Combine(dir, "samples");
        var sample = CliTestHost.Run("sample", "--model", output, "--classes", "1,6", "--num", "2", "--steps", "3", "--out", samples);
        Assert.True(sample.ExitCode == 0, sample.Stderr);
        using var latents = SafetensorsFile.Open(Path.Combine(samples, "latents.safetensors"));
        Assert.Equal(new long[] { 2, 4, 8, 8 }, latents.Entries["latents"].Shape);

        var missingHeads = CliTestHost.Run("convert", pt, "--kind", "dit", "-o", Path.Combine(dir, "x.safetensors"));
        Assert.Equal(1, missingHeads.ExitCode);
        Assert.Contains("--num-heads", missingHeads.Stderr);
        Assert.False(File.Exists(Path.Combine(dir, "x.safetensors")));
    }
}
