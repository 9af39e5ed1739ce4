namespace LatentDiffusion.Training;

/// <summary>Progress of a run, reported after every step; <paramref name="Values"/> holds every value the step measured.</summary>
/// <param name="Step">Steps done so far, this one included.</param>
/// <param name="TotalSteps">The run's step budget.</param>
/// <param name="Loss">The step's loss.</param>
/// <param name="StepsPerSecond">Steps per second in this process since its first step.</param>
/// <param name="LearningRate">The learning rate the step used.</param>
/// <param name="Values">Every named value the step measured (the loss included), in log order.</param>
public sealed record TrainingProgress(long Step, long TotalSteps, double Loss, double StepsPerSecond, double LearningRate,
    IReadOnlyDictionary<string, double>? Values = null);
