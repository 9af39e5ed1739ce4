using LatentDiffusion.Training;

namespace LatentDiffusion.Cli.Commands;

/// <summary>
/// The run folder of `ldm train` and `ldm train-autoencoder`: a command that fails before its run has trained anything
/// (bad data, an option found wrong late, a refused resume) removes the folder it created (<see cref="RunFolder"/>).
/// A diverged run has trained: its folder stays, with what it logged.
/// </summary>
internal static class RunFolderGuard
{
    /// <summary>Runs <paramref name="work"/> for the run folder <paramref name="path"/> (which it may create); on failure
    /// removes the folder when this command created it and it holds no run, then rethrows.</summary>
    public static int Run(string path, Func<int> work)
    {
        var folder = RunFolder.Claim(path);
        try { return work(); }
        catch (Exception e)
        {
            if (!Diverged(e)) folder.RemoveIfUnused();
            throw;
        }
    }

    static bool Diverged(Exception? e)
    {
        for (; e != null; e = e.InnerException)
            if (e is TrainingDivergedException) return true;
        return false;
    }
}
