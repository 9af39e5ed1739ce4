using LatentDiffusion.IO;
using LatentDiffusion.Pipelines;
using TorchSharp;

namespace LatentDiffusion.Tests;

/// <summary>
/// A full disk or a read-only file system met while writing is a one-line <see cref="LdmException"/> naming the path,
/// and leaves neither a temporary file nor a partial result behind (issue 12). The errors are injected here, so these
/// run anywhere; CliOutputFailureTests meets real ones on a tmpfs.
/// </summary>
public sealed class WriteFailureTests : IDisposable
{
    readonly string _dir = RepoPaths.NewTempDir("write-failure");

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    [Theory]
    [InlineData(28, "the disk is full")]        // ENOSPC
    [InlineData(30, "the file system is read-only")]   // EROFS
    [InlineData(5, "Input/output error; choose a writable output path")]   // EIO: the system's words
    public void AFailedWriteIsAUserErrorAndKeepsTheOldFile(int errno, string expected)
    {
        string path = Path.Combine(_dir, "model.safetensors");
        File.WriteAllText(path, "old");
        var e = Assert.Throws<LdmException>(() => AtomicFile.Write(path, s =>
        {
            s.Write(new byte[100]);
            throw new IOException(errno == 5 ? "Input/output error : '/x/.model.safetensors.1.tmp'" : "No space left on device : '/x/.tmp'", errno);
        }));
        Assert.Contains($"cannot write '{path}': {expected}", e.Message);
        Assert.DoesNotContain(".tmp", e.Message);
        Assert.Equal("old", File.ReadAllText(path));
        Assert.Equal([path], Directory.GetFiles(_dir));
    }

    [Fact]
    public void AnEmptyPathIsAUserError() =>
        Assert.Contains("empty", Assert.Throws<LdmException>(() => AtomicFile.WriteAllText("", "x")).Message);

    [Fact]
    public void AFolderThatCannotBeCreatedIsAUserError()
    {
        string file = Path.Combine(_dir, "file");
        File.WriteAllText(file, "x");
        var e = Assert.Throws<LdmException>(() => WriteFailure.CreateFolder(Path.Combine(file, "sub")));
        Assert.StartsWith($"cannot create the folder '{Path.Combine(file, "sub")}'", e.Message);
    }

    /// <summary>The third PNG's name is taken by a folder, so its rename fails after two PNGs were written.</summary>
    [Fact]
    public void SavingImagesIsAllOrNothing()
    {
        using var images = torch.zeros(4, 3, 8, 8);
        using var samples = new GeneratedImages(images.alias(), isLatent: false, classIds: [0, 0, 0, 0], prompts: null, classNames: ["a"]);
        string blocker = Path.Combine(_dir, "00002_000_a.png");
        Directory.CreateDirectory(blocker);
        var e = Assert.Throws<LdmException>(() => samples.Save(_dir));
        Assert.StartsWith($"cannot write '{blocker}'", e.Message);
        Assert.EndsWith("(removed the 2 images written before it).", e.Message);
        Assert.Empty(Directory.GetFiles(_dir));
    }
}
