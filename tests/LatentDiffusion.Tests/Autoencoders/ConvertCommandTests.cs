using System.CommandLine;
using LatentDiffusion.Autoencoders;
using LatentDiffusion.Cli;
using LatentDiffusion.Cli.Commands;
using LatentDiffusion.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests.Autoencoders;

[Collection(ConsoleCollection.Name)]
public sealed class ConvertCommandTests
{
    // The shared in-process host: it serialises console redirection across test classes.
    static (int code, string stderr) Run(params string[] args)
    {
        var result = CliTestHost.Run(args);
        return (result.ExitCode, result.Stderr);
    }

    [Fact]
    public void ConvertsDiffusersWeightsWithAJsonConfigAndScaleFactor()
    {
        using var model = AutoencoderKeysTests.RandomModel(21);
        string dir = RepoPaths.NewTempDir("ae-convert");
        string input = Path.Combine(dir, "diffusion_pytorch_model.safetensors");
        SafetensorsWriter.Write(input, AutoencoderKeysTests.DiffusersStateDict(model, oldNames: false));
        string configPath = Path.Combine(dir, "ae.json");
        File.WriteAllText(configPath, AutoencoderKeysTests.Tiny.ToJson().ToJsonString());
        string output = Path.Combine(dir, "ae.safetensors");

        var (code, stderr) = Run("convert", input, "-o", output, "--kind", "autoencoder", "--config", configPath, "--scale-factor", "0.5");
        Assert.True(code == 0, stderr);
        using var loaded = AutoencoderKL.Load(output);
        Assert.Equal(0.5, loaded.LatentScale);
        using var _ = torch.no_grad();
        var x = torch.rand([1, 3, 16, 16], generator: new Generator(1)) * 2 - 1;
        Assert.True(model.forward(x).equal(loaded.forward(x)).all().item<bool>());
    }

    [Fact]
    public void WeightsOfTheWrongArchitectureForTheConfigGiveOneLineError()
    {
        using var model = AutoencoderKeysTests.RandomModel(23);
        string dir = RepoPaths.NewTempDir("ae-convert-bad");
        string input = Path.Combine(dir, "diffusion_pytorch_model.safetensors");
        SafetensorsWriter.Write(input, AutoencoderKeysTests.DiffusersStateDict(model, oldNames: false));

        var (code, stderr) = Run("convert", input, "-o", Path.Combine(dir, "out.safetensors"), "--config", "f4-32");
        Assert.Equal(1, code);
        Assert.StartsWith("error: the weights in", stderr);
        Assert.Single(stderr.TrimEnd().Split('\n'));
        Assert.False(File.Exists(Path.Combine(dir, "out.safetensors")));

        (code, stderr) = Run("convert", input, "-o", Path.Combine(dir, "out.safetensors"), "--config", "no-such-preset");
        Assert.Equal(1, code);
        Assert.Contains("neither an autoencoder preset", stderr);
    }
}
