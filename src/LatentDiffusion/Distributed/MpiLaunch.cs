using System.Globalization;
using System.Reflection;
using System.Runtime.InteropServices;

namespace LatentDiffusion.Distributed;

/// <summary>
/// How this process was started: by MPICH's <c>mpiexec</c> (which puts PMI_RANK and PMI_SIZE in every rank's
/// environment), by Open MPI's (OMPI_COMM_WORLD_* variables; its ABI differs from MPICH's, so it is refused), or
/// directly. Also binds MPI.NET, which is built against Microsoft MPI's <c>msmpi.dll</c>, to MPICH's library, whose
/// ABI (handle values, calling convention) is the same: MS-MPI is derived from MPICH.
/// </summary>
public static class MpiLaunch
{
    /// <summary>Environment variable naming the MPI library to load instead of MPICH's <c>libmpich.so.12</c>.</summary>
    public const string LibraryEnvVar = "LDM_MPI_LIBRARY";
    const string MpichLibrary = "libmpich.so.12";
    static int s_resolverSet;

    /// <summary>True when MPICH's launcher started this process (PMI_RANK and PMI_SIZE are set).</summary>
    public static bool IsMpich => Variable("PMI_RANK") is not null && Variable("PMI_SIZE") is not null;

    /// <summary>True when Open MPI's launcher started this process.</summary>
    public static bool IsOpenMpi => Variable("OMPI_COMM_WORLD_SIZE") is not null;

    /// <summary>The number of processes the launcher started (PMI_SIZE), 1 without a launcher.</summary>
    public static int WorldSize => IsMpich ? Number("PMI_SIZE") : 1;

    /// <summary>The ranks the launcher put on this machine (Hydra's MPI_LOCALNRANKS), 1 without a launcher; the
    /// machine's cores are shared among them.</summary>
    public static int LocalRanks => IsMpich && Variable("MPI_LOCALNRANKS") is not null ? Math.Max(1, Number("MPI_LOCALNRANKS")) : 1;

    /// <summary>Intra-op threads for one rank when the user chose none: this machine's cores shared evenly by its ranks.</summary>
    public static int DefaultThreadsPerRank => Math.Max(1, Environment.ProcessorCount / LocalRanks);

    /// <summary>Throws when the launcher is one ldm cannot talk to (Open MPI).</summary>
    public static void CheckSupported()
    {
        if (IsOpenMpi && !IsMpich)
            throw new LdmException("ldm was launched by Open MPI, but its MPI support uses MPICH's ABI (MPI.NET binds msmpi/MPICH handles); install mpich and launch with mpiexec.mpich.");
    }

    /// <summary>Makes MPI.NET's P/Invokes of <c>msmpi.dll</c> load MPICH (or <see cref="LibraryEnvVar"/>) on Linux and
    /// macOS; on Windows MS-MPI's own <c>msmpi.dll</c> is found as usual. Safe to call more than once.</summary>
    public static void BindMpich()
    {
        if (Interlocked.Exchange(ref s_resolverSet, 1) == 1) return;
        if (OperatingSystem.IsWindows()) return;
        NativeLibrary.SetDllImportResolver(typeof(MPI.Unsafe).Assembly, Resolve);
    }

    static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? path)
    {
        if (!name.Contains("msmpi", StringComparison.OrdinalIgnoreCase)) return IntPtr.Zero;
        string library = Variable(LibraryEnvVar) ?? MpichLibrary;
        if (NativeLibrary.TryLoad(library, out var handle)) return handle;
        throw new LdmException($"ldm was launched by mpiexec but could not load the MPI library '{library}'; install MPICH (apt-get install mpich) or point {LibraryEnvVar} at libmpich.so.12.");
    }

    static string? Variable(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } v ? v : null;

    static int Number(string name) =>
        int.TryParse(Variable(name), NumberStyles.Integer, CultureInfo.InvariantCulture, out int n) ? n
            : throw new LdmException($"the MPI launcher set {name}='{Variable(name)}', not a number; launch ldm with mpiexec.mpich.");
}
