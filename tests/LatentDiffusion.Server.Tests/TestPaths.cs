[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace LatentDiffusion.Server.Tests;

/// <summary>Where the repository, its shipped models and scratch folders are, seen from the test assembly. The tests
/// run one at a time: they share two cores with whatever else the machine runs, and the load test measures memory.</summary>
public static class TestPaths
{
    public static string Root { get; } = FindRoot();
    public static string Models => Path.Combine(Root, "models");
    /// <summary>Where the browser test saves its screenshots and the load test its figures (docs/serve.md shows them).</summary>
    public static string Artifacts => Directory.CreateDirectory(Path.Combine(Root, "artifacts", "serve")).FullName;

    static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir != null && !File.Exists(Path.Combine(dir.FullName, "LatentDiffusion.slnx"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("cannot find the repository root above " + AppContext.BaseDirectory);
    }

    /// <summary>A fresh empty folder under the system temp directory, for one test.</summary>
    public static string NewTempDir(string tag)
    {
        string d = Path.Combine(Path.GetTempPath(), "ldm-serve-tests", $"{tag}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(d);
        return d;
    }
}
