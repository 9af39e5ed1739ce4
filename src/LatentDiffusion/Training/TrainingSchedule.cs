namespace LatentDiffusion.Training;

/// <summary>
/// How long a run trains, its learning rate and how often it logs and checkpoints. Only <see cref="Steps"/> may grow
/// when a finished run is continued; the learning rate and warm-up are part of the run's settings.
/// </summary>
/// <param name="Steps">Total optimisation steps of the run.</param>
/// <param name="LearningRate">Peak learning rate.</param>
/// <param name="WarmupSteps">Linear warm-up over this many steps (0 = none).</param>
/// <param name="LogEvery">Write one metrics entry (the mean over the interval) every this many steps, and at the end.</param>
/// <param name="CheckpointEvery">Write the checkpoint every this many steps, and at the end.</param>
internal sealed record TrainingSchedule(long Steps, double LearningRate, int WarmupSteps, int LogEvery, int CheckpointEvery)
{
    /// <summary>The learning rate of step <paramref name="step"/> (0-based): linear warm-up to the peak, then constant (DiT's schedule).</summary>
    public double LearningRateAt(long step) =>
        WarmupSteps > 0 ? LearningRate * Math.Min(1.0, (step + 1.0) / WarmupSteps) : LearningRate;
}
