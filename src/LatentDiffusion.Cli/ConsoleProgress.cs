using Spectre.Console;

namespace LatentDiffusion.Cli;

/// <summary>
/// A progress bar for long work (Spectre.Console) with throughput and time left; on a non-interactive output
/// (CI, pipes) it prints a plain line every few seconds instead.
/// </summary>
public static class ConsoleProgress
{
    public static T Run<T>(string title, double total, Func<Action<double, string>, T> work)
    {
        if (!AnsiConsole.Profile.Capabilities.Interactive || Console.IsOutputRedirected)
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            double lastPrint = -10;
            return work((value, status) =>
            {
                double now = clock.Elapsed.TotalSeconds;
                if (now - lastPrint >= 5 || value >= total)
                {
                    lastPrint = now;
                    Console.WriteLine($"{title}: {value:0}/{total:0} {status} ({now:F0} s)");
                }
            });
        }
        T result = default!;
        AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask(Markup.Escape(title), maxValue: total);
                result = work((value, status) =>
                {
                    task.Value = value;
                    task.Description = Markup.Escape($"{title} {status}");
                });
                task.Value = total;
            });
        return result;
    }
}
