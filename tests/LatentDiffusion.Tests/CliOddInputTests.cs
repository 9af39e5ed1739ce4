using System.Runtime.InteropServices;

namespace LatentDiffusion.Tests;

/// <summary>
/// Inputs that used to end in a stack trace or be noticed only after the work (issue 12): an empty --out or --model,
/// a model given as a pipe (<c>--model &lt;(cat m.safetensors)</c>), --columns 0.
/// </summary>
[Collection(ConsoleCollection.Name)]
public sealed class CliOddInputTests : IDisposable
{
    readonly string _dir = RepoPaths.NewTempDir("cli-odd");

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    string Out => Path.Combine(_dir, "out");

    [Theory]
    [InlineData("sample", "--out")]
    [InlineData("sample", "--model")]
    [InlineData("train", "--out")]
    [InlineData("train-autoencoder", "--out")]
    [InlineData("export", "--out")]
    [InlineData("export", "--model")]
    [InlineData("check-shapes", "--out")]
    public void AnEmptyPathIsRefused(string command, string option)
    {
        string model = TinyModels.SaveCheckpoint(_dir);
        string[] args = command switch
        {
            "sample" => ["sample", "--model", model, "--out", Out, "--steps", "1", "--num", "2"],
            "train" => ["train", "--data", "shapes:count=16", "--out", Out, "--steps", "1"],
            "train-autoencoder" => ["train-autoencoder", "--data", "shapes:count=16", "--out", Out, "--steps", "1"],
            "export" => ["export", "--model", model, "--out", Path.Combine(_dir, "x.safetensors")],
            "check-shapes" => ["check-shapes", "--model", model, "--out", Path.Combine(_dir, "c.json"), "--num", "1", "--steps", "1"],
            _ => throw new ArgumentException(command),
        };
        int at = Array.IndexOf(args, option);
        args[at + 1] = "";
        CliExpect.UserError(CliTestHost.Run(args), "empty");
        Assert.Empty(Directory.EnumerateFiles(_dir, "*", SearchOption.AllDirectories).Where(f => !f.EndsWith("tiny.safetensors")));
    }

    [DllImport("libc", SetLastError = true)]
    static extern int mkfifo(string path, uint mode);

    /// <summary>A named pipe fed with <paramref name="file"/> by a background thread, as bash's &lt;(cat file) is.</summary>
    string PipeOf(string file)
    {
        string fifo = Path.Combine(_dir, "pipe-" + Path.GetFileName(file));
        Assert.Equal(0, mkfifo(fifo, Convert.ToUInt32("600", 8)));
        // Background: if the command never opens the pipe, the writer must not keep the test process alive.
        new Thread(() =>
        {
            try
            {
                using var w = new FileStream(fifo, FileMode.Open, FileAccess.Write);
                using var r = File.OpenRead(file);
                r.CopyTo(w);
            }
            catch (IOException) { /* the reader closed the pipe: expected */ }
        }) { IsBackground = true }.Start();
        return fifo;
    }

    [Fact]
    public void AModelFromAPipeIsRefusedWithWhatToDo()
    {
        if (!OperatingSystem.IsLinux()) return;
        string pipe = PipeOf(TinyModels.SaveCheckpoint(_dir));
        CliExpect.UserError(CliTestHost.Run("sample", "--model", pipe, "--out", Out, "--steps", "1", "--num", "2"), $"'{pipe}' is a pipe, not a file", "save it to a file first");
        Assert.False(Directory.Exists(Out) && Directory.EnumerateFiles(Out).Any());
    }

    [Fact]
    public void ConvertingFromAPipeIsRefusedWithWhatToDo()
    {
        if (!OperatingSystem.IsLinux()) return;
        string pipe = PipeOf(TinyModels.SaveCheckpoint(_dir));
        CliExpect.UserError(CliTestHost.Run("convert", pipe, "--out", Path.Combine(_dir, "c.safetensors")), $"'{pipe}' is a pipe, not a file");
    }

    [Theory]
    [InlineData("0")]
    [InlineData("-3")]
    public void ColumnsBelowOneAreRefusedBeforeSampling(string columns)
    {
        var r = CliTestHost.Run("sample", "--model", TinyModels.SaveCheckpoint(_dir), "--out", Out, "--steps", "1", "--num", "2", "--columns", columns);
        CliExpect.UserError(r, $"--columns must be at least 1, got {columns}");
        Assert.DoesNotContain("sampling", r.Stdout);
        Assert.False(Directory.Exists(Out) && Directory.EnumerateFiles(Out).Any());
    }
}
