namespace LatentDiffusion.Studies;

/// <summary>A score a study evaluator reports, and which way is better.</summary>
/// <param name="Key">Key in the evaluation records (e.g. <c>fid</c>).</param>
/// <param name="Label">Column and axis label (e.g. "classifier-FID").</param>
/// <param name="LowerIsBetter">True for distances (FID), false for accuracies.</param>
public sealed record StudyMetric(string Key, string Label, bool LowerIsBetter);
