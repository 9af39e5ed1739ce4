namespace LatentDiffusion.Tests;

/// <summary>Where the repository and scratch folders are, seen from the test assembly (the golden fixtures: <see cref="Fixtures.FixtureCatalog"/>).</summary>
public static class RepoPaths
{
    public static string Root { get; } = FindRoot();

    static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir != null && !File.Exists(Path.Combine(dir.FullName, "LatentDiffusion.slnx"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("cannot find the repository root (LatentDiffusion.slnx) above " + AppContext.BaseDirectory);
    }

    /// <summary>A fresh empty folder under the system temp directory, for one test.</summary>
    public static string NewTempDir(string tag)
    {
        string d = Path.Combine(Path.GetTempPath(), "ldm-tests", $"{tag}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(d);
        return d;
    }
}
