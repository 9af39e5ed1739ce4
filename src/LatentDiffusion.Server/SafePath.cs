namespace LatentDiffusion.Server;

/// <summary>
/// The one gate between a name a client sends and a file on disk: the name must be a relative path that stays inside
/// the folder once '..', links and absolute parts are resolved, and name an existing file of an allowed kind.
/// Anything else is a <see cref="NotFoundException"/>, told the same way whether the file exists or not.
/// </summary>
public static class SafePath
{
    /// <summary>Image types the pages show from run and study folders.</summary>
    public static readonly IReadOnlySet<string> ImageExtensions = new HashSet<string>(StringComparer.OrdinalIgnoreCase) { ".png", ".svg" };

    /// <summary>The full path of <paramref name="relative"/> inside <paramref name="folder"/>.</summary>
    public static string Resolve(string folder, string? relative)
    {
        var refused = new NotFoundException($"no file '{relative}' here; only images inside the served folders can be read.");
        if (string.IsNullOrWhiteSpace(relative) || relative.Contains('\0') || Path.IsPathRooted(relative) || relative.Contains('\\'))
            throw refused;
        string root = Path.GetFullPath(folder);
        string full = Path.GetFullPath(Path.Combine(root, relative));
        if (!Inside(root, full) || !ImageExtensions.Contains(Path.GetExtension(full)) || !File.Exists(full)) throw refused;
        // A link inside the folder may point outside it: follow it and check again.
        var target = new FileInfo(full).ResolveLinkTarget(returnFinalTarget: true);
        if (target is not null && !Inside(Path.GetFullPath(root), Path.GetFullPath(target.FullName))) throw refused;
        // Every folder on the way must be a plain folder inside the root, not a link out of it.
        for (var dir = new DirectoryInfo(Path.GetDirectoryName(full)!); dir.FullName.Length > root.Length; dir = dir.Parent!)
            if (dir.LinkTarget is not null && (dir.ResolveLinkTarget(true) is not { } t || !Inside(root, Path.GetFullPath(t.FullName)))) throw refused;
        return full;
    }

    static bool Inside(string root, string path) =>
        path.StartsWith(Path.TrimEndingDirectorySeparator(root) + Path.DirectorySeparatorChar, StringComparison.Ordinal);
}
