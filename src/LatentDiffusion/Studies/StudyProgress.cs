namespace LatentDiffusion.Studies;

/// <summary>Where a study is: the run training or being evaluated and the step it reached.</summary>
/// <param name="Configuration">The configuration's name.</param>
/// <param name="Seed">The run's seed.</param>
/// <param name="Step">Training step of the run.</param>
/// <param name="Steps">The run's step budget.</param>
/// <param name="Stage">"training" or "evaluating".</param>
/// <param name="EvaluationsDone">Evaluations finished in the whole study (including those done before a resume).</param>
/// <param name="EvaluationsTotal">Evaluations the whole study makes.</param>
/// <param name="Loss">Last training loss (training only).</param>
public sealed record StudyProgress(string Configuration, long Seed, long Step, long Steps, string Stage, int EvaluationsDone, int EvaluationsTotal, double? Loss = null);
