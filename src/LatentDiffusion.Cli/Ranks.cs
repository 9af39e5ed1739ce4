using System.Text;
using LatentDiffusion.Distributed;
using Spectre.Console;

namespace LatentDiffusion.Cli;

/// <summary>
/// The ranks this <c>ldm</c> process runs with: one process, unless MPICH's <c>mpiexec</c> started several (then MPI
/// is initialised; otherwise it is never loaded). Under MPI, rank 0 prints and writes files while the other ranks
/// stay quiet (their errors still reach stderr, marked with the rank); each rank gets the machine's cores shared by
/// the ranks on it unless <c>--threads</c> says otherwise; and a rank that fails ends the whole job (MPI_Abort), so no
/// rank waits forever for it in a collective.
/// </summary>
public static class Ranks
{
    /// <summary>The commands that run across ranks; the others refuse to run under a multi-rank launch.</summary>
    static readonly string[] Distributed = ["train", "sample", "evaluate"];

    /// <summary>The process group of this process (<see cref="SingleProcess.Instance"/> without mpiexec).</summary>
    public static IProcessGroup World { get; private set; } = SingleProcess.Instance;

    /// <summary>Runs <paramref name="main"/> in the process group the launch asks for; returns its exit code.</summary>
    public static int Run(Func<int> main)
    {
        try { World = ProcessGroup.FromEnvironment(); }
        catch (LdmException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
        if (World.Size == 1) return main();
        TorchSharp.torch.set_num_threads(MpiLaunch.DefaultThreadsPerRank);
        if (!World.IsMain)
        {
            Console.SetOut(TextWriter.Null);
            AnsiConsole.Console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(TextWriter.Null) });
            Console.SetError(new RankPrefixWriter(Console.Error, World.Rank));
        }
        int code;
        try { code = main(); }
        catch (Exception e)
        {
            Console.Error.WriteLine($"internal error (a bug in ldm, please report it): {e}");
            code = 2;
        }
        var mpi = (MpiProcessGroup)World;
        if (code != 0)
        {
            // MPI_Abort ends every rank at once, and mpiexec may drop output it has not forwarded yet: give it a
            // moment to pass on this rank's error line first.
            Console.Error.Flush();
            Thread.Sleep(TimeSpan.FromSeconds(1));
            mpi.Abort(code);
        }
        mpi.Dispose();
        return code;
    }

    /// <summary>Refuses a command that does not run across ranks when there are several.</summary>
    public static void CheckCommand(string command)
    {
        if (World.Size > 1 && !Distributed.Contains(command))
            throw new LdmException($"ldm {command} runs in one process; start it without mpiexec (only {string.Join(", ", Distributed)} run across ranks).");
    }

    /// <summary>Runs <paramref name="work"/> on rank 0 first and on the other ranks after it, for work that may write
    /// a shared file the others then read (the latent cache of a run folder).</summary>
    public static T MainFirst<T>(Func<T> work)
    {
        if (World.Size == 1) return work();
        if (World.IsMain)
        {
            T result;
            try { result = work(); }
            finally { World.Barrier(); }
            return result;
        }
        World.Barrier();
        return work();
    }

    /// <summary>Marks each line a non-main rank writes to stderr with its rank.</summary>
    sealed class RankPrefixWriter(TextWriter inner, int rank) : TextWriter
    {
        bool _lineStart = true;
        public override Encoding Encoding => inner.Encoding;
        public override void Write(char value)
        {
            if (_lineStart) inner.Write($"[rank {rank}] ");
            inner.Write(value);
            _lineStart = value == '\n';
        }
        public override void Flush() => inner.Flush();
    }
}
