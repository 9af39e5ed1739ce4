using System.Text.Json.Nodes;

namespace LatentDiffusion.Tests.Fixtures;

/// <summary>A fixture folder found by <see cref="FixtureCatalog"/>: where it is, its report name and its manifest kind
/// and case count (read without opening its tensors).</summary>
public sealed record FoundFixture(string Dir, string Name, string Kind, int CaseCount, FixtureRoot Root)
{
    public static FoundFixture Read(string dir, FixtureRoot root)
    {
        var manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "manifest.json")))!;
        return new(dir, root.NameOf(dir), (string?)manifest["kind"] ?? "(no kind)", (manifest["cases"] as JsonArray)?.Count ?? 0, root);
    }

    /// <summary>Opens the folder's manifest and tensors.</summary>
    public Fixture Open() => new(Dir, Name);
}
