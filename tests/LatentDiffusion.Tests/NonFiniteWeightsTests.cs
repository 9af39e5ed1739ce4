using LatentDiffusion.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests;

/// <summary>
/// A checkpoint whose weights hold NaN or ±Inf is refused at load, naming the file and the tensor (issue 12); it used to
/// load and draw NaN images.
/// </summary>
[Collection(ConsoleCollection.Name)]
public sealed class NonFiniteWeightsTests : IDisposable
{
    readonly string _dir = RepoPaths.NewTempDir("non-finite");

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    /// <summary>The tiny checkpoint with one value of <paramref name="tensor"/> (the last in name order when null) set to <paramref name="value"/>.</summary>
    (string path, string tensor) Poisoned(float value, string? tensor = null)
    {
        string clean = TinyModels.SaveCheckpoint(_dir);
        using var file = SafetensorsFile.Open(clean);
        var meta = file.Metadata.ToDictionary();
        var weights = file.ReadAll();
        string name = tensor ?? weights.Keys.Where(k => weights[k].is_floating_point()).Order(StringComparer.Ordinal).Last();
        weights[name].view(-1)[weights[name].NumberOfElements / 2] = torch.tensor(value);
        string path = Path.Combine(_dir, "poisoned.safetensors");
        SafetensorsWriter.Write(path, weights, meta);
        foreach (var t in weights.Values) t.Dispose();
        return (path, name);
    }

    [Theory]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    [InlineData(float.NegativeInfinity)]
    public void LoadingRefusesNonFiniteWeights(float value)
    {
        var (path, tensor) = Poisoned(value);
        var e = Assert.Throws<LdmException>(() => Denoisers.DenoiserCheckpoint.Load(path));
        Assert.Equal($"'{path}' has 1 NaN or infinite values in tensor '{tensor}'; the model is damaged (saved from a diverged training run?): use an earlier checkpoint or train again.", e.Message);
    }

    [Fact]
    public void FiniteWeightsLoad()
    {
        var (model, _) = Denoisers.DenoiserCheckpoint.Load(TinyModels.SaveCheckpoint(_dir));
        model.Dispose();
    }

    [Theory]
    [InlineData("sample")]
    [InlineData("export")]
    public void CommandsRefuseANaNModel(string command)
    {
        var (path, tensor) = Poisoned(float.NaN);
        string output = Path.Combine(_dir, command == "export" ? "x.safetensors" : "out");
        string[] args = command == "sample"
            ? ["sample", "--model", path, "--out", output, "--steps", "1", "--num", "2"]
            : ["export", "--model", path, "--out", output];
        CliExpect.UserError(CliTestHost.Run(args), path, $"tensor '{tensor}'");
        Assert.False(File.Exists(output) || (Directory.Exists(output) && Directory.EnumerateFiles(output).Any()));
    }
}
