namespace LatentDiffusion.Tests.Fixtures;

/// <summary>
/// Every fixture folder the tests can use: the repository's (tests/fixtures), then the external root's
/// (<see cref="FixtureRoot.External"/>), each folder once: an external folder identical to one already found
/// (same files, same bytes) is dropped, so the shared copy of a repository fixture is not run twice.
/// </summary>
public sealed class FixtureCatalog
{
    public IReadOnlyList<FixtureRoot> Roots { get; }
    /// <summary>Distinct folders, the repository's first, each root's in ordinal path order.</summary>
    public IReadOnlyList<FoundFixture> Folders { get; }
    /// <summary>Folders dropped because they are identical to a folder in <see cref="Folders"/>.</summary>
    public IReadOnlyList<(FoundFixture Dropped, FoundFixture SameAs)> Duplicates { get; }

    FixtureCatalog(IReadOnlyList<FixtureRoot> roots)
    {
        Roots = roots;
        var kept = new List<FoundFixture>();
        var duplicates = new List<(FoundFixture, FoundFixture)>();
        foreach (var root in roots)
            foreach (var dir in Fixture.FindAll(root.Path))
            {
                var found = FoundFixture.Read(dir, root);
                var same = kept.FirstOrDefault(k => k.Kind == found.Kind && FixtureFolderComparison.AreIdentical(k.Dir, dir));
                if (same is null) kept.Add(found);
                else duplicates.Add((found, same));
            }
        Folders = kept;
        Duplicates = duplicates;
    }

    /// <summary>The repository's fixtures plus the external root's, as the environment says now.</summary>
    public static FixtureCatalog Discover() =>
        new(FixtureRoot.External is { } external ? [FixtureRoot.Repository, external] : [FixtureRoot.Repository]);

    /// <summary>One discovery per test run, for the tests that only need a fixture of some kind.</summary>
    public static FixtureCatalog Current => current.Value;
    static readonly Lazy<FixtureCatalog> current = new(Discover);

    public IEnumerable<FoundFixture> OfKind(string kind) => Folders.Where(f => f.Kind == kind);

    /// <summary>
    /// The fixture of a kind that a test other than the parity test uses, opened: the first external one that
    /// <paramref name="fits"/> (so that pointing LDM_FIXTURES at another fixture set tests that set), else the
    /// repository's. Fails the test, naming the kind, when no folder of the kind fits.
    /// </summary>
    public Fixture Open(string kind, Func<Fixture, bool>? fits = null, string? needs = null)
    {
        foreach (var found in OfKind(kind).OrderBy(f => f.Root.IsRepository))
        {
            var fixture = found.Open();
            if (fits is null || fits(fixture)) return fixture;
            fixture.Dispose();
        }
        throw new Xunit.Sdk.XunitException(
            $"no fixture of kind '{kind}'{(needs is null ? "" : $" with {needs}")} under {string.Join(" or ", Roots.Select(r => r.Path))}");
    }
}
