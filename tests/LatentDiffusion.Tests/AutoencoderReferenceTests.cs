using Xunit;

namespace LatentDiffusion.Tests;

/// <summary>A model names its autoencoder by a plain file name beside it; any other name (a folder part, "..", an
/// absolute path) is refused instead of followed, so a crafted model file cannot make the tool read another file.</summary>
public class AutoencoderReferenceTests : IDisposable
{
    readonly string _dir = RepoPaths.NewTempDir("ae-reference");

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    [Theory]
    [InlineData("../ae.safetensors")]
    [InlineData("/etc/passwd")]
    [InlineData("sub/ae.safetensors")]
    [InlineData("..\\ae.safetensors")]
    [InlineData("..")]
    public void ANameThatIsNotAPlainFileNameIsRefused(string name)
    {
        Directory.CreateDirectory(Path.Combine(_dir, "sub"));
        File.WriteAllText(Path.Combine(_dir, "sub", "ae.safetensors"), "x");
        var info = TinyModels.Info(TinyModels.Config(), "latent") with { Autoencoder = name };
        var error = Assert.Throws<LdmException>(() => info.AutoencoderBeside(Path.Combine(_dir, "sub", "model.safetensors")));
        Assert.Contains("plain file name", error.Message);
    }

    [Fact]
    public void APlainFileNameBesideTheModelIsFollowed()
    {
        string ae = Path.Combine(_dir, "ae.safetensors");
        File.WriteAllText(ae, "x");
        var info = TinyModels.Info(TinyModels.Config(), "latent") with { Autoencoder = "ae.safetensors" };
        Assert.Equal(Path.GetFullPath(ae), info.AutoencoderBeside(Path.Combine(_dir, "model.safetensors")));
        Assert.Null((info with { Autoencoder = "missing.safetensors" }).AutoencoderBeside(Path.Combine(_dir, "model.safetensors")));
    }
}
