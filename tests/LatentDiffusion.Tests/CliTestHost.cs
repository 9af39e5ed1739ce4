using LatentDiffusion.Cli;

namespace LatentDiffusion.Tests;

/// <summary>
/// Tests that change process-wide state (Console.SetOut/SetError, libtorch's thread count) must not overlap with each
/// other or with any other test: this collection runs alone, after the parallel ones.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ConsoleCollection
{
    public const string Name = "console and torch threads";
}

/// <summary>
/// Runs tiny models on one libtorch thread for the life of the object and then restores the previous count. On a busy
/// 2-core machine two threads make tiny-model steps 10-50x slower (each parallel region waits for a descheduled
/// thread), and one fixed count also keeps bit-exact comparisons independent of what other tests set.
/// Use only from tests in <see cref="ConsoleCollection"/>.
/// </summary>
public sealed class SingleTorchThread : IDisposable
{
    readonly int _previous = TorchSharp.torch.get_num_threads();

    public SingleTorchThread() => TorchSharp.torch.set_num_threads(1);

    public void Dispose() => TorchSharp.torch.set_num_threads(_previous);
}

/// <summary>The result of one in-process `ldm` run.</summary>
public sealed record CliResult(int ExitCode, string Stdout, string Stderr)
{
    public override string ToString() => $"exit {ExitCode}\n--- stdout ---\n{Stdout}\n--- stderr ---\n{Stderr}";
}

/// <summary>
/// Runs the `ldm` tool in-process exactly as Program.cs does (<see cref="LdmApp.BuildRoot"/> + <see cref="CliRunner.Run"/>),
/// capturing what it writes to stdout and stderr. Use only from tests in <see cref="ConsoleCollection"/>.
/// </summary>
public static class CliTestHost
{
    static readonly object Gate = new();

    public static CliResult Run(params string[] args)
    {
        lock (Gate)
        {
            var (oldOut, oldErr) = (Console.Out, Console.Error);
            // Spectre.Console binds its static console to Console.Out when first used; bind it to this run's capture
            // and give the previous one back, so no later test writes to a disposed StringWriter.
            var oldAnsi = Spectre.Console.AnsiConsole.Console;
            using var stdout = new StringWriter();
            using var stderr = new StringWriter();
            Console.SetOut(stdout);
            Console.SetError(stderr);
            Spectre.Console.AnsiConsole.Console = Spectre.Console.AnsiConsole.Create(
                new Spectre.Console.AnsiConsoleSettings { Out = new Spectre.Console.AnsiConsoleOutput(stdout) });
            int code;
            using var threads = new SingleTorchThread();
            try { code = CliRunner.Run(LdmApp.BuildRoot(), args); }
            finally
            {
                Console.SetOut(oldOut);
                Console.SetError(oldErr);
                Spectre.Console.AnsiConsole.Console = oldAnsi;
            }
            return new CliResult(code, stdout.ToString(), stderr.ToString());
        }
    }
}
