namespace LatentDiffusion.Distributed;

/// <summary>Picks the process group of this process from how it was launched.</summary>
public static class ProcessGroup
{
    /// <summary>
    /// The MPI group when MPICH's <c>mpiexec</c> started more than one rank (MPI is initialised here), else
    /// <see cref="SingleProcess.Instance"/>, for which MPI is never loaded: a plain run, or a machine without MPI,
    /// keeps the single-process code path. Dispose the group at exit (MPI_Finalize).
    /// </summary>
    public static IProcessGroup FromEnvironment()
    {
        MpiLaunch.CheckSupported();
        return MpiLaunch.WorldSize > 1 ? MpiProcessGroup.Initialize() : SingleProcess.Instance;
    }
}
