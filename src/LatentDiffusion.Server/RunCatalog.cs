using LatentDiffusion.Studies;

namespace LatentDiffusion.Server;

/// <summary>
/// The training runs and studies under the runs folders, found afresh on every call (a run started while the server
/// runs appears): a folder holding <c>metrics.jsonl</c> is a run, one holding <c>study.json</c> a study (whose own
/// runs are listed too). Folders are looked up by the ids this scan made, never by a client's path.
/// </summary>
public sealed class RunCatalog(IReadOnlyList<string> folders)
{
    /// <summary>How deep below a runs folder to look (a study's runs are two levels below the study).</summary>
    const int MaxDepth = 4;

    public IReadOnlyList<ServedFolder> List()
    {
        var found = new List<ServedFolder>();
        for (int i = 0; i < folders.Count; i++)
        {
            if (!Directory.Exists(folders[i])) continue;
            string root = Path.GetFullPath(folders[i]);
            Walk(root, root, i, 0, found);
        }
        return found;
    }

    /// <summary>The run or study of <paramref name="id"/>; a <see cref="NotFoundException"/> when the scan has none.</summary>
    public ServedFolder Find(string id, string kind) =>
        List().FirstOrDefault(f => f.Id == id && f.Kind == kind)
        ?? throw new NotFoundException($"no {kind} '{id}' under the runs folders; GET /api/runs lists them.");

    static void Walk(string root, string dir, int index, int depth, List<ServedFolder> found)
    {
        string rel = Path.GetRelativePath(root, dir).Replace(Path.DirectorySeparatorChar, '/');
        string id = rel == "." ? index.ToString(System.Globalization.CultureInfo.InvariantCulture) : $"{index}/{rel}";
        if (File.Exists(Path.Combine(dir, Study.PlanFile))) found.Add(new ServedFolder(id, "study", dir));
        if (File.Exists(Path.Combine(dir, RunView.MetricsFile))) found.Add(new ServedFolder(id, "run", dir));
        if (depth >= MaxDepth) return;
        IEnumerable<string> children;
        try { children = Directory.EnumerateDirectories(dir).Order(StringComparer.Ordinal).ToList(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return; }
        foreach (var child in children)
        {
            // Links are not followed: a link could lead out of the runs folder (or round in a circle).
            if (new DirectoryInfo(child).LinkTarget is not null) continue;
            Walk(root, child, index, depth + 1, found);
        }
    }
}
