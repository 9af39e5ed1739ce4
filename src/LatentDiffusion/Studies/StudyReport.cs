using System.Globalization;
using System.Text;

namespace LatentDiffusion.Studies;

/// <summary>
/// The study's report as Markdown: the plan, the table of results at the end of the budget (mean ± standard deviation
/// and range over seeds), the ranking and whether it lies outside the seed spread, every evaluation along the way, and
/// the plots and grids it is given (paths relative to the report).
/// </summary>
public static class StudyReport
{
    /// <summary>The report's file name in a study folder.</summary>
    public const string FileName = "report.md";

    static string F(double v, string format = "G4") => v.ToString(format, CultureInfo.InvariantCulture);

    /// <summary>The Markdown report of <paramref name="study"/> as it stands (unfinished runs are listed as such).</summary>
    /// <param name="study">The study.</param>
    /// <param name="title">The heading.</param>
    /// <param name="plots">Relative paths of plot images to show, with captions.</param>
    /// <param name="grids">Per configuration the relative path of its sample grid.</param>
    public static string Markdown(Study study, string title, IReadOnlyList<(string caption, string path)>? plots = null,
        IReadOnlyDictionary<string, string>? grids = null)
    {
        var o = study.Options;
        var sb = new StringBuilder();
        sb.AppendLine($"# {title}").AppendLine();
        sb.AppendLine($"Every configuration trained on the same data, in the same order, with the same optimizer and schedule (batch {o.Training.BatchSize}, "
            + $"lr {F(o.Training.LearningRate)}, warm-up {o.Training.WarmupSteps}, EMA {F(o.Training.EmaDecay)}, {DtypeText(o.Training.Dtype)}), "
            + (o.Budget == StudyBudget.EqualSteps ? $"for {o.Training.Steps} steps each" : $"for the training FLOPs of {o.Training.Steps} steps of '{study.Plans[0].Configuration.Name}' each")
            + $", with seeds {string.Join(", ", o.Seeds)}. Measured: {study.EvaluatorDescription}; samples by {Diffusion.Samplers.Name(o.Sampling.Sampler)}, "
            + $"{o.Sampling.Steps} steps, guidance {F(o.Sampling.GuidanceScale)}, the same noise (seed {o.Sampling.Seed}) for every model.");
        sb.AppendLine();

        var rows = StudySummary.Of(study);
        var metrics = study.Metrics;
        sb.Append("| configuration | parameters | forward GFLOPs / image | steps | training TFLOPs | seeds |");
        foreach (var m in metrics) sb.Append($" {m.Label} ({(m.LowerIsBetter ? "lower" : "higher")} is better) |");
        sb.AppendLine(" training s / step | sampling images / s |");
        sb.Append("| --- | --- | --- | --- | --- | --- |");
        foreach (var _ in metrics) sb.Append(" --- |");
        sb.AppendLine(" --- | --- |");
        foreach (var plan in study.Plans)
        {
            var row = rows.FirstOrDefault(r => r.Plan == plan);
            sb.Append($"| {plan.Configuration.Name} | {plan.Cost.Parameters / 1e6:F2} M | {F(plan.Cost.ForwardFlops / 1e9, "F4")} | {plan.Steps} | "
                + $"{F(plan.TrainingFlopsAt(plan.Steps, o.Training.BatchSize) / 1e12, "G4")} | {(row is null ? "0" : row.Seeds.Count.ToString(CultureInfo.InvariantCulture))} of {o.Seeds.Count} |");
            foreach (var m in metrics)
                sb.Append(row is not null && row.Metrics.TryGetValue(m.Key, out var s)
                    ? (row.Seeds.Count > 1 ? $" {Value(m, s.Mean)} ± {Value(m, s.StdDev)} ({Value(m, s.Min)}–{Value(m, s.Max)}) |" : $" {Value(m, s.Mean)} |")
                    : " (training) |");
            sb.AppendLine(row is null ? " | |" : $" {F(row.SecondsPerStep, "F3")} | {F(row.ImagesPerSecond, "F1")} |");
        }
        sb.AppendLine();
        sb.AppendLine("Mean ± sample standard deviation over seeds (range in brackets). Times are wall time on the machine that ran the study, "
            + "one run at a time; FLOPs are counted from the layer shapes (forward; training = 3 × forward per image).");
        sb.AppendLine();
        sb.AppendLine(Ranking(rows, metrics[0])).AppendLine();

        if (plots is { Count: > 0 })
        {
            foreach (var (caption, path) in plots) sb.AppendLine($"![{caption}]({path})").AppendLine();
        }
        if (grids is { Count: > 0 })
        {
            var shown = study.Plans.Where(p => grids.ContainsKey(p.Configuration.Name)).ToList();
            sb.AppendLine("Samples at the end of the first seed's runs (same conditions and noise for every model):").AppendLine();
            sb.AppendLine("| " + string.Join(" | ", shown.Select(p => p.Configuration.Name)) + " |");
            sb.AppendLine("| " + string.Join(" | ", shown.Select(_ => "---")) + " |");
            sb.AppendLine("| " + string.Join(" | ", shown.Select(p => $"![{p.Configuration.Name}]({grids[p.Configuration.Name]})")) + " |");
            sb.AppendLine();
        }

        sb.AppendLine($"## Every evaluation ({metrics[0].Label}, mean over the seeds evaluated)").AppendLine();
        var steps = study.Results.Records.Select(r => r.Step).Distinct().Order().ToList();
        if (study.Options.Budget == StudyBudget.EqualSteps)
        {
            sb.AppendLine("| step | " + string.Join(" | ", study.Plans.Select(p => p.Configuration.Name)) + " |");
            sb.AppendLine("| --- | " + string.Join(" | ", study.Plans.Select(_ => "---")) + " |");
            foreach (long step in steps)
                sb.AppendLine($"| {step} | " + string.Join(" | ", study.Plans.Select(p => Cell(study, p, step, metrics[0]))) + " |");
        }
        else
        {
            sb.AppendLine("| configuration | " + "step: value, ..." + " |").AppendLine("| --- | --- |");
            foreach (var p in study.Plans)
                sb.AppendLine($"| {p.Configuration.Name} | " + string.Join(", ", p.EvaluationSteps.Select(s => $"{s}: {Cell(study, p, s, metrics[0])}")) + " |");
        }
        return sb.ToString();
    }

    static string Cell(Study study, StudyPlan plan, long step, StudyMetric metric)
    {
        var values = study.Results.Records.Where(r => r.Configuration == plan.Configuration.Name && r.Step == step && r.Metrics.ContainsKey(metric.Key))
            .Select(r => r.Metrics[metric.Key]).ToList();
        return values.Count == 0 ? "" : Value(metric, values.Average()) + (values.Count < study.Options.Seeds.Count ? $" ({values.Count})" : "");
    }

    /// <summary>Accuracies as percentages, distances as numbers.</summary>
    static string Value(StudyMetric m, double v) => m.Key.Contains("accuracy", StringComparison.Ordinal) ? F(100 * v, "F1") + " %" : F(v, "F3");

    /// <summary>The configurations from best to worst on <paramref name="metric"/>, and for each neighbouring pair whether every seed agrees.</summary>
    public static string Ranking(IReadOnlyList<StudySummary> rows, StudyMetric metric)
    {
        var ranked = rows.Where(r => r.Metrics.ContainsKey(metric.Key))
            .OrderBy(r => metric.LowerIsBetter ? r.Metrics[metric.Key].Mean : -r.Metrics[metric.Key].Mean).ToList();
        if (ranked.Count < 2) return "Ranking: fewer than two configurations have finished.";
        var sb = new StringBuilder($"Ranking by {metric.Label}: ");
        for (int i = 0; i < ranked.Count; i++)
        {
            if (i > 0)
            {
                bool apart = ranked[i - 1].Seeds.Count > 1 && ranked[i].Seeds.Count > 1 && StudySummary.Separated(ranked[i - 1], ranked[i], metric);
                sb.Append(apart ? " > " : " ≈ ");
            }
            sb.Append(ranked[i].Plan.Configuration.Name);
        }
        sb.Append(". '>' means every seed of the left configuration beat every seed of the right one (ranges apart); '≈' means the seed ranges overlap "
            + "(or one seed only), so that order is within the seed spread.");
        int n = ranked.Min(r => r.Seeds.Count);
        if (n > 1)
            sb.Append(string.Create(CultureInfo.InvariantCulture,
                $" With {n} seeds each, two configurations of equal quality still have apart ranges with probability {ChanceApart(n):G2} (either order), so a single '>' between close means is weak evidence; a gap of many standard deviations is not."));
        return sb.ToString();
    }

    /// <summary>
    /// The probability that n draws from each of two identical distributions have non-overlapping ranges, in either order:
    /// 2·(n!)²/(2n)! (of the (2n choose n) equally likely interleavings, two put one set wholly below the other).
    /// </summary>
    public static double ChanceApart(int n)
    {
        double p = 2;
        for (int i = 1; i <= n; i++) p *= i / (double)(n + i);
        return p;
    }

    /// <summary>"float32", "bf16 mixed precision", or what auto resolved to on this machine.</summary>
    static string DtypeText(ComputeDtype dtype)
    {
        string Of(bool bf16) => bf16 ? "bf16 mixed precision" : "float32";
        return dtype.IsAuto ? $"dtype auto: {Of(dtype.Resolve() == TorchSharp.torch.ScalarType.BFloat16)} on this machine" : Of(dtype == ComputeDtype.BFloat16);
    }
}
