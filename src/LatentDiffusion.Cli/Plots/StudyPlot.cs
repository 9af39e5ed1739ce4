using LatentDiffusion.IO;
using LatentDiffusion.Studies;

namespace LatentDiffusion.Cli.Plots;

/// <summary>
/// A study's primary measure against training steps or training FLOPs (PNG): one colour per configuration, every
/// seed's evaluations as points and their mean as a line, so the spread between seeds stays visible.
/// </summary>
public static class StudyPlot
{
    /// <summary>Writes the plot to <paramref name="pngPath"/> (atomically); <paramref name="byFlops"/>: x is training TFLOPs, else steps.</summary>
    public static void Save(string pngPath, Study study, StudyMetric metric, bool byFlops, int width = 800, int height = 450)
    {
        var plot = new ScottPlot.Plot();
        var palette = new ScottPlot.Palettes.Category10();
        int i = 0;
        foreach (var plan in study.Plans)
        {
            var color = palette.GetColor(i++);
            var records = study.Results.Records.Where(r => r.Configuration == plan.Configuration.Name && r.Metrics.ContainsKey(metric.Key)).ToList();
            if (records.Count == 0) continue;
            double X(StudyRecord r) => byFlops ? plan.TrainingFlopsAt(r.Step, study.Options.Training.BatchSize) / 1e12 : r.Step;
            var points = plot.Add.ScatterPoints(records.Select(X).ToArray(), records.Select(r => r.Metrics[metric.Key]).ToArray(), color.WithAlpha(0.45));
            points.MarkerSize = 5;
            var means = records.GroupBy(r => r.Step).OrderBy(g => g.Key).Select(g => (x: X(g.First()), y: g.Average(r => r.Metrics[metric.Key]))).ToList();
            var line = plot.Add.ScatterLine(means.Select(m => m.x).ToArray(), means.Select(m => m.y).ToArray(), color);
            line.LineWidth = 2;
            line.LegendText = plan.Configuration.Name;
        }
        plot.Title($"{metric.Label} ({(metric.LowerIsBetter ? "lower" : "higher")} is better)");
        plot.XLabel(byFlops ? "training TFLOPs" : "training step");
        plot.YLabel(metric.Label);
        // Curves fall (distances) or rise (accuracies) to the right: put the legend where they start, away from their ends.
        plot.ShowLegend(metric.LowerIsBetter ? ScottPlot.Alignment.UpperRight : ScottPlot.Alignment.LowerRight);
        AtomicFile.WriteAllBytes(pngPath, plot.GetImageBytes(width, height, ScottPlot.ImageFormat.Png));
    }
}
