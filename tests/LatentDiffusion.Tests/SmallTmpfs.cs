using System.Diagnostics;

namespace LatentDiffusion.Tests;

/// <summary>
/// A tmpfs of a few pages mounted on a fresh folder (optionally read-only), for tests of a full disk and a read-only
/// file system: as root, chmod does not stop a write, a real file system does. <see cref="TryMount"/> returns null where
/// mounting is not allowed (not root, or a container without CAP_SYS_ADMIN); callers then test the unprivileged
/// stand-ins (an injected ENOSPC, a folder that cannot be created).
/// </summary>
public sealed class SmallTmpfs : IDisposable
{
    public string Path { get; }

    SmallTmpfs(string path) => Path = path;

    public static SmallTmpfs? TryMount(string tag, int kilobytes, bool readOnly = false)
    {
        if (!OperatingSystem.IsLinux()) return null;
        string dir = RepoPaths.NewTempDir(tag);
        if (Run("mount", "-t", "tmpfs", "-o", $"size={kilobytes}k{(readOnly ? ",ro" : "")}", "tmpfs", dir) != 0)
        {
            Directory.Delete(dir);
            return null;
        }
        return new SmallTmpfs(dir);
    }

    static int Run(string file, params string[] args)
    {
        try
        {
            var info = new ProcessStartInfo(file) { RedirectStandardError = true, RedirectStandardOutput = true };
            foreach (var a in args) info.ArgumentList.Add(a);
            using var p = Process.Start(info)!;
            p.WaitForExit(10_000);
            return p.HasExited ? p.ExitCode : -1;
        }
        catch (System.ComponentModel.Win32Exception) { return -1; }   // no mount program
    }

    public void Dispose()
    {
        Run("umount", Path);
        try { Directory.Delete(Path, true); } catch (IOException) { }
    }
}
