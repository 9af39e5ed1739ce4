namespace LatentDiffusion.Tests;

/// <summary>What every refused `ldm` run must look like: exit code 1 and exactly one stderr line <c>error: ...</c>
/// holding the given words, no stack trace.</summary>
public static class CliExpect
{
    /// <summary>Checks <paramref name="r"/> and returns its error line.</summary>
    public static string UserError(CliResult r, params string[] keywords)
    {
        Assert.True(r.ExitCode == 1, r.ToString());
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.True(lines.Length == 1, $"stderr must be one line\n{r}");
        Assert.StartsWith("error: ", lines[0]);
        foreach (var k in keywords) Assert.Contains(k, lines[0]);
        Assert.DoesNotContain("   at ", r.Stderr + r.Stdout);
        Assert.DoesNotContain("Exception", lines[0]);
        return lines[0];
    }
}
