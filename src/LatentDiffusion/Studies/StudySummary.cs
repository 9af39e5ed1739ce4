namespace LatentDiffusion.Studies;

/// <summary>Mean, sample standard deviation and range of one measure over a configuration's seeds.</summary>
/// <param name="Mean">Mean over the seeds.</param>
/// <param name="StdDev">Sample standard deviation (n − 1; 0 for one seed).</param>
/// <param name="Min">Smallest value.</param>
/// <param name="Max">Largest value.</param>
public sealed record Spread(double Mean, double StdDev, double Min, double Max)
{
    /// <summary>The spread of <paramref name="values"/> (at least one).</summary>
    public static Spread Of(IReadOnlyList<double> values)
    {
        double mean = values.Average();
        double sd = values.Count > 1 ? Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / (values.Count - 1)) : 0;
        return new Spread(mean, sd, values.Min(), values.Max());
    }
}

/// <summary>One configuration's result at the end of its budget, over the seeds that reached it.</summary>
/// <param name="Plan">The configuration's plan (cost, steps).</param>
/// <param name="Seeds">Seeds whose runs reached the end (the others are still training).</param>
/// <param name="Metrics">Per measure key: its spread over those seeds.</param>
/// <param name="SecondsPerStep">Mean training wall time per step.</param>
/// <param name="ImagesPerSecond">Mean sampling throughput at the final evaluations.</param>
public sealed record StudySummary(StudyPlan Plan, IReadOnlyList<long> Seeds, IReadOnlyDictionary<string, Spread> Metrics, double SecondsPerStep, double ImagesPerSecond)
{
    /// <summary>The summaries of every configuration with at least one finished run, in the study's order.</summary>
    public static IReadOnlyList<StudySummary> Of(Study study)
    {
        var rows = new List<StudySummary>();
        foreach (var plan in study.Plans)
        {
            var final = study.Results.Records.Where(r => r.Configuration == plan.Configuration.Name && r.Step == plan.Steps).ToList();
            if (final.Count == 0) continue;
            var metrics = study.Metrics.Where(m => final.All(r => r.Metrics.ContainsKey(m.Key)))
                .ToDictionary(m => m.Key, m => Spread.Of(final.Select(r => r.Metrics[m.Key]).ToList()));
            rows.Add(new StudySummary(plan, final.Select(r => r.Seed).ToList(), metrics,
                final.Average(r => r.TrainingSeconds) / plan.Steps, final.Average(r => r.ImagesPerSecond)));
        }
        return rows;
    }

    /// <summary>
    /// True when every seed of <paramref name="better"/> beats every seed of <paramref name="worse"/> on <paramref name="metric"/>
    /// (their ranges do not overlap): the only ordering this report calls outside the seed spread.
    /// </summary>
    public static bool Separated(StudySummary better, StudySummary worse, StudyMetric metric)
    {
        var b = better.Metrics[metric.Key]; var w = worse.Metrics[metric.Key];
        return metric.LowerIsBetter ? b.Max < w.Min : b.Min > w.Max;
    }
}
