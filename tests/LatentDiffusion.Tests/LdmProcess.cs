using System.Diagnostics;

namespace LatentDiffusion.Tests;

/// <summary>
/// The built `ldm` tool run as a child process, for tests that need a real process: one that is killed with SIGKILL
/// part-way, or whose exit code and output must be those of the executable.
/// </summary>
public static class LdmProcess
{
    /// <summary>The Release build of the tool (built by scripts/setup.sh or `dotnet build -c Release`).</summary>
    public static string Executable
    {
        get
        {
            string path = Path.Combine(RepoPaths.Root, "artifacts", "bin", "LatentDiffusion.Cli", "release", "ldm");
            Assert.True(File.Exists(path), $"{path} is missing; build the solution in Release (./scripts/setup.sh)");
            return path;
        }
    }

    /// <summary>Starts ldm with <paramref name="args"/> on one OpenMP thread, stdout and stderr redirected (read them, or the pipes fill up).</summary>
    public static Process Start(params string[] args)
    {
        var start = new ProcessStartInfo(Executable) { WorkingDirectory = RepoPaths.Root, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) start.ArgumentList.Add(a);
        start.Environment["OMP_NUM_THREADS"] = "1";
        return Process.Start(start)!;
    }

    /// <summary>Runs ldm to its end (at most <paramref name="timeout"/>, default 90 s) and returns its exit code and output.</summary>
    public static CliResult Run(string[] args, TimeSpan? timeout = null)
    {
        using var process = Start(args);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout ?? TimeSpan.FromSeconds(90)))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            Assert.Fail($"ldm {string.Join(' ', args)} did not finish in time\n{stdout.Result}\n{stderr.Result}");
        }
        return new CliResult(process.ExitCode, stdout.Result, stderr.Result);
    }
}
