using Xunit.Abstractions;

namespace LatentDiffusion.Tests;

/// <summary>
/// Commands that write, on a full disk and on a read-only file system: exit code 1, one line naming the path and what
/// to do, and no partial result (issue 12). Real file systems: as root, chmod stops nothing, so a tmpfs of a few pages
/// (full after three files) and a read-only tmpfs are mounted. Where mounting is not allowed, the read-only cases use
/// an output folder that cannot be created and the full-disk case is left to WriteFailureTests (injected ENOSPC).
/// </summary>
[Collection(ConsoleCollection.Name)]
public sealed class CliOutputFailureTests(ITestOutputHelper output) : IDisposable
{
    readonly string _dir = RepoPaths.NewTempDir("cli-out-fail");

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    static string[] Command(string name, string model, string outPath) => name switch
    {
        "sample" => ["sample", "--model", model, "--out", outPath, "--steps", "1", "--num", "64"],
        "train" => ["train", "--out", outPath, "--data", "shapes:count=16", "--steps", "2", "--batch-size", "4", "--hidden-size", "32", "--depth", "1",
            "--num-heads", "2", "--patch-size", "8", "--sample-steps", "1"],
        "train-autoencoder" => ["train-autoencoder", "--out", outPath, "--data", "shapes:count=16", "--steps", "1", "--batch-size", "4"],
        "export" => ["export", "--model", model, "--out", Path.Combine(outPath, "x.safetensors")],
        _ => throw new ArgumentException(name),
    };

    [Theory]
    [InlineData("sample")]
    [InlineData("train")]
    [InlineData("train-autoencoder")]
    [InlineData("export")]
    public void AReadOnlyOutputFolderIsRefusedBeforeAnyWork(string command)
    {
        string model = TinyModels.SaveCheckpoint(_dir);
        using var readOnly = SmallTmpfs.TryMount("ro", 64, readOnly: true);
        if (readOnly is null)
        {
            output.WriteLine("cannot mount a tmpfs here: testing an output folder under a regular file instead");
            string file = Path.Combine(_dir, "a-file");
            File.WriteAllText(file, "x");
            CliExpect.UserError(CliTestHost.Run(Command(command, model, Path.Combine(file, "out"))), "cannot create", Path.Combine(file, "out"));
            return;
        }
        var r = CliTestHost.Run(Command(command, model, readOnly.Path));
        CliExpect.UserError(r, readOnly.Path, "read-only");
        // Refused by the write check, before sampling or training started.
        Assert.DoesNotContain("sampling", r.Stdout);
        Assert.DoesNotContain("step", r.Stdout);
    }

    [Fact]
    public void SamplingOntoAFullDiskLeavesNoPartialSet()
    {
        using var small = SmallTmpfs.TryMount("full", 16);
        if (small is null) { output.WriteLine("cannot mount a tmpfs here; WriteFailureTests covers a full disk"); return; }
        string outDir = Path.Combine(small.Path, "s");
        string line = CliExpect.UserError(CliTestHost.Run(Command("sample", TinyModels.SaveCheckpoint(_dir), outDir)), "the disk is full", outDir, "removed the");
        Assert.Empty(Directory.EnumerateFiles(small.Path, "*", SearchOption.AllDirectories));
        output.WriteLine(line);
    }

    [Fact]
    public void TrainingOntoAFullDiskNamesTheFile()
    {
        using var small = SmallTmpfs.TryMount("full", 16);
        if (small is null) { output.WriteLine("cannot mount a tmpfs here; WriteFailureTests covers a full disk"); return; }
        string run = Path.Combine(small.Path, "run");
        CliExpect.UserError(CliTestHost.Run(Command("train", "", run)), "the disk is full", run);
        // No temporary file is left; what a full disk allows (the metrics log) is whole.
        Assert.Empty(Directory.EnumerateFiles(small.Path, "*.tmp", SearchOption.AllDirectories));
    }
}
