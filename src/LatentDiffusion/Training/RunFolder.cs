namespace LatentDiffusion.Training;

/// <summary>
/// A run folder as one invocation found it, taken before anything is created: whether it (or which of its parents)
/// did not exist yet. A run that fails before it has trained anything then removes what it created, so a typo in an
/// option or unreadable data leaves no empty or half-made run folder behind; a folder that existed before, and any
/// folder holding a run (a checkpoint or a metrics log with entries), is never removed.
/// </summary>
public sealed class RunFolder
{
    /// <summary>The topmost folder on the way to <see cref="Path"/> that did not exist when claimed (null: the run folder existed).</summary>
    readonly string? _firstMissing;

    /// <summary>The run folder.</summary>
    public string Path { get; }

    /// <summary>The run folder did not exist when claimed: this invocation creates it.</summary>
    public bool IsNew => _firstMissing is not null;

    RunFolder(string path, string? firstMissing)
    {
        Path = path;
        _firstMissing = firstMissing;
    }

    /// <summary>Notes how <paramref name="path"/> is before the run creates it (call before creating anything in or above it).</summary>
    public static RunFolder Claim(string path)
    {
        string full = System.IO.Path.GetFullPath(path);
        if (Directory.Exists(full) || File.Exists(full)) return new RunFolder(path, null);
        string missing = full;
        for (string? parent = System.IO.Path.GetDirectoryName(missing); parent != null && !Directory.Exists(parent) && !File.Exists(parent);
             parent = System.IO.Path.GetDirectoryName(parent))
            missing = parent;
        return new RunFolder(path, missing);
    }

    /// <summary>The folder holds a run: a training checkpoint, or a metrics log with at least one entry.</summary>
    public bool HoldsARun()
    {
        if (File.Exists(System.IO.Path.Combine(Path, TrainingRun.CheckpointFile))) return true;
        var metrics = new FileInfo(System.IO.Path.Combine(Path, TrainingRun.MetricsFile));
        return metrics.Exists && metrics.Length > 0;
    }

    /// <summary>
    /// After a failure: removes the run folder, and the parents created with it, when this invocation created it and
    /// it holds no run. Best effort (a file still open elsewhere may keep it); returns whether the folder is gone.
    /// </summary>
    public bool RemoveIfUnused()
    {
        if (_firstMissing is null || !Directory.Exists(Path) || HoldsARun()) return false;
        try
        {
            Directory.Delete(_firstMissing, recursive: true);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
    }
}
