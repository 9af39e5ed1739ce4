using LatentDiffusion.Cli.Plots;
using Xunit;

namespace LatentDiffusion.Tests;

[Collection(ConsoleCollection.Name)]
public class PlotTests
{
    [Fact]
    public void PlotsLossCurvesOfRunsSideBySideAndSkipsATornLastLine()
    {
        string dir = RepoPaths.NewTempDir("plot");
        string a = Path.Combine(dir, "a"), b = Path.Combine(dir, "b");
        Directory.CreateDirectory(a); Directory.CreateDirectory(b);
        File.WriteAllLines(Path.Combine(a, "metrics.jsonl"), Enumerable.Range(1, 50).Select(i => $"{{\"step\":{i * 10},\"loss\":{1.0 / i}}}").Append("{\"step\":51"));
        File.WriteAllLines(Path.Combine(b, "metrics.jsonl"), Enumerable.Range(1, 50).Select(i => $"{{\"step\":{i * 10},\"loss\":{1.2 / i}}}"));
        Assert.Equal(50, LossCurvePlot.Read(Path.Combine(a, "metrics.jsonl")).Count);
        Assert.Equal([1.0, 1.5, 2.5], LossCurvePlot.MovingAverage([1, 2, 3], 2));

        string png = Path.Combine(dir, "curves.png");
        var r = CliTestHost.Run("plot", a, b, "--labels", "float32,bf16", "--max-step", "300", "-o", png);
        Assert.True(r.ExitCode == 0, r.ToString());
        var bytes = File.ReadAllBytes(png);
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, bytes[..4]);

        var bad = CliTestHost.Run("plot", a, b, "--labels", "only-one", "-o", png);
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("one label per run", bad.Stderr);
        var missing = CliTestHost.Run("plot", Path.Combine(dir, "nope"), "-o", png);
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("does not exist", missing.Stderr);
    }
}
