namespace LatentDiffusion.Tests.Fixtures;

/// <summary>
/// A folder that holds fixture folders, and the name the report gives it. The repository's own fixtures are
/// always searched; the external root (LDM_FIXTURES, else ../shared/fixtures beside the checkout when it exists)
/// adds what the repository does not hold (the 49 MB inception_fid) or another fixture set of the same kinds.
/// </summary>
public sealed record FixtureRoot(string Path, string Label, bool IsRepository)
{
    public const string EnvironmentVariable = "LDM_FIXTURES";

    /// <summary>tests/fixtures of this checkout.</summary>
    public static FixtureRoot Repository { get; } =
        new(System.IO.Path.Combine(RepoPaths.Root, "tests", "fixtures"), "tests/fixtures", IsRepository: true);

    /// <summary>LDM_FIXTURES when set (even if it does not exist: the parity test then says so), else
    /// ../shared/fixtures when that folder exists, else none.</summary>
    public static FixtureRoot? External
    {
        get
        {
            if (Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } env)
                return new(System.IO.Path.GetFullPath(env), "$" + EnvironmentVariable, IsRepository: false);
            string shared = System.IO.Path.GetFullPath(System.IO.Path.Combine(RepoPaths.Root, "..", "shared", "fixtures"));
            return Directory.Exists(shared) ? new(shared, "../shared/fixtures", IsRepository: false) : null;
        }
    }

    /// <summary>How a fixture folder under this root is named in reports: its path below the root, prefixed with
    /// the root's label unless it is the repository's (whose names stay short, e.g. "dit_forward").</summary>
    public string NameOf(string fixtureDir)
    {
        string rel = System.IO.Path.GetRelativePath(Path, fixtureDir).Replace('\\', '/');
        return IsRepository ? rel : $"{Label}/{rel}";
    }
}
