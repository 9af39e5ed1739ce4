using LatentDiffusion.Cli;

namespace LatentDiffusion.Tests;

/// <summary>
/// Tests that redirect the process-wide console (Console.SetOut/SetError) must not overlap with each other or with any
/// other test: this collection runs alone, after the parallel ones.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ConsoleCollection
{
    public const string Name = "console";
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
            using var stdout = new StringWriter();
            using var stderr = new StringWriter();
            Console.SetOut(stdout);
            Console.SetError(stderr);
            int code;
            try { code = CliRunner.Run(LdmApp.BuildRoot(), args); }
            finally
            {
                Console.SetOut(oldOut);
                Console.SetError(oldErr);
            }
            return new CliResult(code, stdout.ToString(), stderr.ToString());
        }
    }
}
