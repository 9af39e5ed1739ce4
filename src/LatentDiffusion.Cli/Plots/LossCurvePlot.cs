using System.Globalization;
using System.Text.Json.Nodes;
using LatentDiffusion.IO;

namespace LatentDiffusion.Cli.Plots;

/// <summary>
/// Training-loss curves from metrics.jsonl files (one line per logged step, with <c>step</c> and <c>loss</c>) as a PNG:
/// the logged values faintly and a moving average on top, one colour per run, so runs can be compared in one plot.
/// </summary>
public static class LossCurvePlot
{
    /// <summary>Reads (step, loss) pairs of a metrics log; lines without both are skipped (e.g. a torn last line).</summary>
    public static List<(double step, double loss)> Read(string metricsPath, string key = "loss")
    {
        if (!File.Exists(metricsPath))
            throw new LdmException($"metrics log '{metricsPath}' does not exist; pass the metrics.jsonl of a training run.");
        var points = new List<(double, double)>();
        foreach (var line in File.ReadLines(metricsPath))
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            JsonNode? node;
            try { node = JsonNode.Parse(line); }
            catch (System.Text.Json.JsonException) { continue; }
            if (node?["step"] is JsonValue s && node[key] is JsonValue l && s.TryGetValue(out double step) && l.TryGetValue(out double loss) && double.IsFinite(loss))
                points.Add((step, loss));
        }
        return points;
    }

    /// <summary>Writes the curves of (label, metrics.jsonl) runs to <paramref name="pngPath"/> (atomically).</summary>
    public static void Save(string pngPath, IReadOnlyList<(string label, string metricsPath)> runs, string title, string key = "loss",
        int width = 800, int height = 450, bool logScale = true, double? maxStep = null)
    {
        var plot = new ScottPlot.Plot();
        int window = 0;
        foreach (var (label, path) in runs)
        {
            var points = Read(path, key).Where(p => maxStep is null || p.step <= maxStep).ToList();
            if (points.Count == 0) continue;
            double[] xs = points.Select(p => p.step).ToArray();
            double[] ys = points.Select(p => logScale ? Math.Log10(p.loss) : p.loss).ToArray();
            var raw = plot.Add.ScatterLine(xs, ys);
            raw.LineWidth = 1;
            raw.Color = raw.Color.WithAlpha(0.25);
            window = Math.Max(1, points.Count / 25);
            var smooth = plot.Add.ScatterLine(xs, MovingAverage(ys, window), raw.Color.WithAlpha(1.0));
            smooth.LineWidth = 2;
            smooth.LegendText = label;
        }
        plot.Title(title);
        plot.XLabel("step");
        plot.YLabel(logScale ? $"{key} (log10)" : key);
        if (runs.Count > 1) plot.ShowLegend();
        byte[] png = plot.GetImageBytes(width, height, ScottPlot.ImageFormat.Png);
        AtomicFile.WriteAllBytes(pngPath, png);
    }

    /// <summary>Trailing mean over <paramref name="window"/> points (fewer at the start).</summary>
    public static double[] MovingAverage(double[] ys, int window)
    {
        var result = new double[ys.Length];
        double sum = 0;
        for (int i = 0; i < ys.Length; i++)
        {
            sum += ys[i];
            if (i >= window) sum -= ys[i - window];
            result[i] = sum / Math.Min(i + 1, window);
        }
        return result;
    }
}
