using LatentDiffusion.Diffusion;

namespace LatentDiffusion.Studies;

/// <summary>
/// What a study will do for one configuration: its cost, its step budget and the steps at which it is evaluated.
/// Under equal FLOPs the budget is the first configuration's training FLOPs, and every configuration is evaluated at
/// the same fractions of it, so the curves share their x positions.
/// </summary>
/// <param name="Configuration">The configuration.</param>
/// <param name="Cost">Parameters and forward FLOPs per image.</param>
/// <param name="Steps">Training steps of each of its runs.</param>
/// <param name="EvaluationSteps">Ascending; the last is <paramref name="Steps"/>.</param>
public sealed record StudyPlan(StudyConfiguration Configuration, ModelCost Cost, long Steps, IReadOnlyList<long> EvaluationSteps)
{
    /// <summary>Training FLOPs after <paramref name="step"/> steps of batch <paramref name="batchSize"/>.</summary>
    public double TrainingFlopsAt(long step, int batchSize) => step * (double)batchSize * Cost.TrainingFlopsPerImage;

    /// <summary>The plans of a study: per configuration its budget and evaluation steps.</summary>
    public static IReadOnlyList<StudyPlan> For(IReadOnlyList<StudyConfiguration> configurations, StudyOptions options)
    {
        var costs = configurations.Select(c => ModelCost.Of(c.Model.Backbone)).ToList();
        long baseSteps = options.Training.Steps;
        int rounds = (int)Math.Ceiling(baseSteps / (double)options.EvaluateEvery);
        var plans = new List<StudyPlan>();
        for (int i = 0; i < configurations.Count; i++)
        {
            long steps = options.Budget == StudyBudget.EqualSteps || costs[i].ForwardFlops <= 0 || costs[0].ForwardFlops <= 0
                ? baseSteps
                : Math.Max(1, (long)Math.Round(baseSteps * costs[0].ForwardFlops / costs[i].ForwardFlops));
            var evals = new List<long>();
            for (int k = 1; k <= rounds; k++)
            {
                // Equal steps: every EvaluateEvery steps and the end; equal FLOPs: the same fractions of each budget.
                long at = options.Budget == StudyBudget.EqualSteps
                    ? Math.Min(steps, (long)k * options.EvaluateEvery)
                    : Math.Max(1, (long)Math.Round(steps * Math.Min(1.0, k * (double)options.EvaluateEvery / baseSteps)));
                if (evals.Count == 0 || at > evals[^1]) evals.Add(at);
            }
            if (evals[^1] != steps) evals.Add(steps);
            plans.Add(new StudyPlan(configurations[i], costs[i], steps, evals));
        }
        return plans;
    }
}
