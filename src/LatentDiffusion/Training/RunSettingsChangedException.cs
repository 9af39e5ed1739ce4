namespace LatentDiffusion.Training;

/// <summary>
/// A resume that asks for other settings than the run was started with (a learning rate, a model shape, the data
/// size): the loss curve would not be the run's any more. It names each change (old → new); the trainers' options
/// <c>AllowChangedSettings</c> go on with the new settings instead. A front end rewrites the names with <see cref="MessageWith"/>.
/// </summary>
public sealed class RunSettingsChangedException : LdmException
{
    /// <summary>The run folder whose checkpoint holds the old settings.</summary>
    public string RunDir { get; }
    /// <summary>The settings that differ.</summary>
    public IReadOnlyList<RunSettingChange> Changes { get; }

    /// <summary>The refusal of a resume of <paramref name="runDir"/> with <paramref name="changes"/>.</summary>
    public RunSettingsChangedException(string runDir, IReadOnlyList<RunSettingChange> changes)
        : base(Compose(runDir, changes, c => c.Name, "set AllowChangedSettings to go on with the new ones", "choose a new run folder"))
    {
        RunDir = runDir;
        Changes = changes;
    }

    /// <summary>The message with each setting called <paramref name="nameOf"/> and the ways out worded by the front end
    /// (e.g. <c>add --allow-changed-settings to go on with the new ones</c>, <c>choose a new --out folder</c>).</summary>
    public string MessageWith(Func<RunSettingChange, string> nameOf, string allowAdvice, string newFolderAdvice) =>
        Compose(RunDir, Changes, nameOf, allowAdvice, newFolderAdvice);

    static string Compose(string runDir, IReadOnlyList<RunSettingChange> changes, Func<RunSettingChange, string> nameOf, string allowAdvice, string newFolderAdvice) =>
        $"the run in '{runDir}' was started with other settings: {string.Join(", ", changes.Select(c => c.Describe(nameOf(c))))}; "
        + $"resume with the same settings, {allowAdvice}, or {newFolderAdvice}.";
}
