using System.Diagnostics;
using System.Text.RegularExpressions;
using LatentDiffusion.Training;
using Xunit.Abstractions;

namespace LatentDiffusion.Tests;

/// <summary>
/// Issue 12, part 4, for real: `ldm train` killed with SIGKILL at several points (during start-up, just after a log
/// entry between two checkpoints, ...) and started again each time ends with the metrics.jsonl of an uninterrupted run
/// (byte for byte apart from the wall-clock fields, <see cref="MetricsLog.ProcessFields"/>) and the same weights.
/// The checkpoint interval (7) is not a multiple of the log interval (4), so most resumes start inside a log interval.
/// </summary>
[Collection(ConsoleCollection.Name)]
public sealed partial class KillResumeTests(ITestOutputHelper output) : IDisposable
{
    readonly string _dir = RepoPaths.NewTempDir("kill-resume");

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    const int TotalSteps = 60;

    static string[] Train(string outDir) =>
        ["train", "--dtype", "float32", "--threads", "1", "--data", "shapes:count=64", "--preset", "S/4", "--hidden-size", "32", "--depth", "2",
         "--num-heads", "2", "--steps", TotalSteps.ToString(), "--batch-size", "8", "--lr", "1e-3", "--warmup", "5", "--grad-clip", "1", "--flip",
         "--log-every", "4", "--checkpoint-every", "7", "--sample-steps", "1", "--out", outDir];

    [GeneratedRegex("\"step\":(\\d+)")]
    private static partial Regex StepField();

    [GeneratedRegex(@"resuming .* at step (\d+)")]
    private static partial Regex ResumeLine();

    /// <summary>The step of the last complete entry of the run's metrics.jsonl (0 when there is none).</summary>
    static long LastLoggedStep(string run)
    {
        try
        {
            using var stream = new FileStream(Path.Combine(run, TrainingRun.MetricsFile), FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            string text = new StreamReader(stream).ReadToEnd();
            int end = text.LastIndexOf('\n');
            if (end < 0) return 0;
            int start = text.LastIndexOf('\n', end - 1) + 1;
            var m = StepField().Match(text[start..end]);
            return m.Success ? long.Parse(m.Groups[1].Value) : 0;
        }
        catch (IOException) { return 0; }
    }

    /// <summary>Starts the run and kills it (SIGKILL) once <paramref name="due"/> says so; returns whether the process was
    /// still running when killed, and what it printed.</summary>
    static (bool killedRunning, string stdout) RunAndKill(string run, Func<Stopwatch, bool> due)
    {
        using var process = LdmProcess.Start(Train(run));
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        var clock = Stopwatch.StartNew();
        while (!process.HasExited && !due(clock) && clock.Elapsed < TimeSpan.FromSeconds(60)) Thread.Sleep(2);
        bool running = !process.HasExited;
        if (running) process.Kill();   // SIGKILL: no handler, no flush, no final checkpoint
        process.WaitForExit();
        _ = stderr.Result;
        return (running, stdout.Result);
    }

    [Fact]
    public void TrainKilledAndResumedSeveralTimes_EndsWithTheUninterruptedLogAndWeights()
    {
        var clock = Stopwatch.StartNew();
        string straight = Path.Combine(_dir, "straight"), killed = Path.Combine(_dir, "killed");
        var whole = LdmProcess.Run(Train(straight));
        Assert.True(whole.ExitCode == 0, whole.ToString());

        // First during start-up (nothing trained yet), then once the log has passed these steps: the kill lands just
        // after a log entry, between two checkpoints (7, 14, ...), so the entries after the checkpoint must go.
        var kills = new List<(bool running, string stdout)> { RunAndKill(killed, c => c.ElapsedMilliseconds > 300) };
        foreach (long target in new long[] { 12, 24, 36, 52 })
            kills.Add(RunAndKill(killed, _ => LastLoggedStep(killed) >= target));
        var last = LdmProcess.Run(Train(killed));
        Assert.True(last.ExitCode == 0, last.ToString());

        var resumedFrom = kills.Skip(1).Select(k => k.stdout).Append(last.Stdout)
            .Select(s => ResumeLine().Match(s)).Where(m => m.Success).Select(m => long.Parse(m.Groups[1].Value)).ToList();
        output.WriteLine($"killed while running: {kills.Count(k => k.running)} of {kills.Count}; resumed from steps {string.Join(", ", resumedFrom)}; {clock.Elapsed.TotalSeconds:F1} s");
        Assert.True(kills.Skip(1).Count(k => k.running) >= 3, "the runs ended before they could be killed; the test did not test anything");
        Assert.Contains(resumedFrom, s => s % 4 != 0);   // at least one resume started inside a log interval

        Assert.Equal(Enumerable.Range(1, TotalSteps / 4).Select(i => 4L * i),
            MetricsLog.Read(Path.Combine(killed, TrainingRun.MetricsFile)).Select(e => e["step"].GetInt64()));
        ExactResumeTests.AssertSameRun(straight, killed, DiffusionTrainer.CheckpointFile, DiffusionTrainer.ModelFile);
    }
}
