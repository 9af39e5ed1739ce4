namespace LatentDiffusion.Training;

/// <summary>
/// A loss or a weight became NaN or infinite. The run stops before writing a checkpoint, so the last good one stays;
/// <see cref="Advice"/> is in the library's terms and a front end can swap it for its own (<see cref="WithAdvice"/>).
/// </summary>
/// <param name="what">What became non-finite.</param>
/// <param name="step">The 1-based step at which it happened.</param>
/// <param name="runDir">The run folder, or null for a run in memory.</param>
/// <param name="advice">What to try next.</param>
public sealed class TrainingDivergedException(string what, long step, string? runDir, string advice)
    : LdmException(Compose(what, step, runDir, advice))
{
    /// <summary>What became non-finite, e.g. <c>the loss became NaN</c>.</summary>
    public string What { get; } = what;
    /// <summary>The 1-based step at which it happened.</summary>
    public long Step { get; } = step;
    /// <summary>The run folder whose last good checkpoint is kept, or null for a run in memory.</summary>
    public string? RunDir { get; } = runDir;
    /// <summary>What to try next, in the library's terms (option names of the training options).</summary>
    public string Advice { get; } = advice;

    /// <summary>The same message with other advice (e.g. naming command-line flags).</summary>
    public string WithAdvice(string advice) => Compose(What, Step, RunDir, advice);

    static string Compose(string what, long step, string? runDir, string advice) =>
        $"{what} at step {step}; training stopped{(runDir is null ? "" : $" and the last good checkpoint in '{runDir}' is kept")}. {advice}";
}
