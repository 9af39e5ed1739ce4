namespace LatentDiffusion.Tests.Fixtures;

/// <summary>The parity test runs a fixture found in two places once only when the two folders are byte-identical:
/// a copy with one changed byte, or an extra file, is another fixture and must be run too.</summary>
public sealed class FixtureFolderComparisonTests
{
    static string CopyOf(string source, string tag)
    {
        string dir = RepoPaths.NewTempDir(tag);
        foreach (var f in Directory.GetFiles(source)) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
        return dir;
    }

    [Fact]
    public void ACopyIsTheSameFixtureAndAChangedByteOrFileIsNot()
    {
        string source = Fixture.FindAll(FixtureRoot.Repository.Path).First(d => File.Exists(Path.Combine(d, "data.safetensors")));
        Assert.True(FixtureFolderComparison.AreIdentical(source, CopyOf(source, "fixture-copy")));

        string changed = CopyOf(source, "fixture-changed");
        string data = Path.Combine(changed, "data.safetensors");
        var bytes = File.ReadAllBytes(data);
        bytes[^1] ^= 1;
        File.WriteAllBytes(data, bytes);
        Assert.False(FixtureFolderComparison.AreIdentical(source, changed));

        string extra = CopyOf(source, "fixture-extra");
        File.WriteAllText(Path.Combine(extra, "notes.txt"), "another file");
        Assert.False(FixtureFolderComparison.AreIdentical(source, extra));
    }
}
