namespace LatentDiffusion.Studies;

/// <summary>How a <see cref="Study"/> makes its configurations' training budgets equal.</summary>
public enum StudyBudget
{
    /// <summary>Every configuration trains the same number of steps (the same images seen).</summary>
    EqualSteps,
    /// <summary>Every configuration gets the training FLOPs of the first configuration's steps: a cheaper model trains
    /// more steps (steps = budget / (3 × forward FLOPs per image × batch size), rounded).</summary>
    EqualFlops,
}
