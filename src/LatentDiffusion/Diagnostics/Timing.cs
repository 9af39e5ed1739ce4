using System.Diagnostics;

namespace LatentDiffusion.Diagnostics;

/// <summary>Times an action after warm-up runs and reports the median of the timed runs.</summary>
public static class Timing
{
    /// <summary>Runs <paramref name="action"/> <paramref name="warmup"/> times untimed, then <paramref name="runs"/> times timed; returns the median and every run's time, in seconds.</summary>
    public static (double medianSeconds, double[] allSeconds) Median(Action action, int warmup, int runs)
    {
        for (int i = 0; i < warmup; i++) action();
        var times = new double[runs];
        for (int i = 0; i < runs; i++)
        {
            var sw = Stopwatch.StartNew();
            action();
            times[i] = sw.Elapsed.TotalSeconds;
        }
        var sorted = times.OrderBy(x => x).ToArray();
        double median = runs % 2 == 1 ? sorted[runs / 2] : 0.5 * (sorted[runs / 2 - 1] + sorted[runs / 2]);
        return (median, times);
    }
}
