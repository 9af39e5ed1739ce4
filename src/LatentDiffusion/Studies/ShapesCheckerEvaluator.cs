using LatentDiffusion.Evaluation;
using LatentDiffusion.Pipelines;

namespace LatentDiffusion.Studies;

/// <summary>
/// The shapes checker (<see cref="ShapesEvaluation"/>) as a study measure, for models of the built-in shapes data:
/// class models score the share of samples with the asked kind and colour; text models the share of one-shape and of
/// two-shape prompts drawn right in kind, colour, size and position (two shapes first: it is the harder, primary measure).
/// </summary>
/// <param name="count">Class models: samples per class; text models: one-shape and two-shape prompts each.</param>
/// <param name="text">True for text models, false for class models (the measures differ).</param>
public sealed class ShapesCheckerEvaluator(int count, bool text) : IStudyEvaluator
{
    /// <inheritdoc/>
    public string Description => text
        ? $"shapes checker: {count} one-shape and {count} two-shape prompts, every attribute of every shape checked"
        : $"shapes checker: {count} samples per class, kind and colour checked";

    /// <inheritdoc/>
    public IReadOnlyList<StudyMetric> Metrics { get; } = text
        ? [new StudyMetric("two_shape_accuracy", "two-shape accuracy", false), new StudyMetric("one_shape_accuracy", "one-shape accuracy", false)]
        : [new StudyMetric("accuracy", "checker accuracy", false)];

    /// <inheritdoc/>
    public int LastImageCount { get; private set; }

    /// <inheritdoc/>
    public IReadOnlyDictionary<string, double> Evaluate(DiffusionPipeline pipeline, SamplingOptions sampling, CancellationToken cancel)
    {
        var r = ShapesEvaluation.Run(pipeline, count, sampling);
        LastImageCount = r.Images;
        return text
            ? new Dictionary<string, double> { ["two_shape_accuracy"] = r.TwoShapeAccuracy ?? 0, ["one_shape_accuracy"] = r.Accuracy }
            : new Dictionary<string, double> { ["accuracy"] = r.Accuracy };
    }
}
