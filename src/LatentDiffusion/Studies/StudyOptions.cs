using LatentDiffusion.Pipelines;
using LatentDiffusion.Training;

namespace LatentDiffusion.Studies;

/// <summary>What every configuration of a <see cref="Study"/> shares: training settings and budget, seeds, evaluation schedule and sampling.</summary>
public sealed record StudyOptions
{
    /// <summary>Optimizer, schedule, batch, EMA, precision and logging of every run; <c>Steps</c> is the budget (of the
    /// first configuration under <see cref="StudyBudget.EqualFlops"/>); <c>Seed</c> is replaced by each of <see cref="Seeds"/>.</summary>
    public required DiffusionTrainingOptions Training { get; init; }
    /// <summary>One run per configuration and seed; several seeds give a mean and a spread.</summary>
    public IReadOnlyList<long> Seeds { get; init; } = [0];
    /// <summary>Equal steps or equal training FLOPs.</summary>
    public StudyBudget Budget { get; init; } = StudyBudget.EqualSteps;
    /// <summary>Evaluate every this many steps (of the first configuration under equal FLOPs; the others at the same
    /// fractions of their budget), and at the end.</summary>
    public int EvaluateEvery { get; init; } = 1000;
    /// <summary>Sampler, steps, guidance, seed and batch of every evaluation and grid (the same start noise for all).</summary>
    public SamplingOptions Sampling { get; init; } = new() { Steps = 50, GuidanceScale = 1.0 };
    /// <summary>Images per sample grid written at the end of each configuration's first-seed run (0 = none).</summary>
    public int GridImages { get; init; } = 32;

    /// <summary>Throws <see cref="LdmOptionException"/> naming the first bad setting.</summary>
    public void Validate()
    {
        const string owner = nameof(StudyOptions);
        Training.Validate();
        Sampling.Validate();
        if (Seeds.Count == 0) throw new LdmOptionException(owner, nameof(Seeds), "[]", "hold at least one seed");
        if (Seeds.Distinct().Count() != Seeds.Count) throw new LdmOptionException(owner, nameof(Seeds), string.Join(",", Seeds), "not repeat a seed");
        if (EvaluateEvery < 1) throw new LdmOptionException(owner, nameof(EvaluateEvery), EvaluateEvery, "be at least 1");
        if (GridImages < 0) throw new LdmOptionException(owner, nameof(GridImages), GridImages, "be at least 0");
    }
}
