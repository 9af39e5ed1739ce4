namespace LatentDiffusion.IO;

/// <summary>
/// Turns an operating-system error met while creating a folder or writing a file into the one-line
/// <see cref="LdmException"/> a user can act on: which path, what went wrong (a full disk, a read-only file system, a
/// missing permission) and what to do. Other exceptions are left alone (they are bugs, not user errors).
/// </summary>
public static class WriteFailure
{
    // errno values as .NET reports them in IOException.HResult on Linux and macOS (ENOSPC, EFBIG, EROFS, EDQUOT);
    // on Windows the HResult is an HRESULT (ERROR_DISK_FULL, ERROR_HANDLE_DISK_FULL, ERROR_WRITE_PROTECT).
    const int ENOSPC = 28, EFBIG = 27, EROFS = 30, EDQUOT_LINUX = 122, EDQUOT_MAC = 69;
    const int WinDiskFull = unchecked((int)0x80070070), WinHandleDiskFull = unchecked((int)0x80070027), WinWriteProtect = unchecked((int)0x80070013);

    /// <summary>True for the errors that mean "the output place cannot take this write" rather than a bug.</summary>
    public static bool IsWriteError(Exception e) => e is IOException or UnauthorizedAccessException;

    /// <summary>The user error for <paramref name="e"/> met while writing <paramref name="path"/>; <paramref name="doing"/> is
    /// what was attempted ("write", "create the folder").</summary>
    public static LdmException For(string path, Exception e, string doing = "write")
    {
        // .NET appends the path it used (" : '/out/.grid.png.123.tmp'"); the message names the real path already.
        string reason = System.Text.RegularExpressions.Regex.Replace(e.Message, @"\s*:\s*'[^']*'\s*$", "").TrimEnd('.');
        string what = e.HResult switch
        {
            ENOSPC or WinDiskFull or WinHandleDiskFull => $"the disk is full ({reason}); free some space or choose an output path on another disk",
            EDQUOT_LINUX or EDQUOT_MAC => $"the disk quota is used up ({reason}); free some space or choose an output path on another disk",
            EFBIG => $"the file is larger than this system allows ({reason}); choose an output path on another disk",
            EROFS or WinWriteProtect => $"the file system is read-only ({reason}); choose a writable output path",
            _ => $"{reason}; choose a writable output path",
        };
        return new LdmException($"cannot {doing} '{path}': {what}.", e);
    }

    /// <summary>
    /// Checks, before any long work, that a file can be written into the existing <paramref name="folder"/>: writes one
    /// byte to a hidden probe file, flushes it and removes it. Finds a read-only file system, a missing permission and a
    /// disk with no free block at once instead of after minutes of sampling or training.
    /// </summary>
    public static void CheckWritable(string folder)
    {
        string probe = Path.Combine(folder, $".ldm-write-check.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var fs = new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 0))
            {
                fs.WriteByte(0);
                fs.Flush(flushToDisk: true);
            }
        }
        catch (Exception e) when (IsWriteError(e))
        {
            try { File.Delete(probe); } catch (Exception d) when (IsWriteError(d)) { /* it may not exist */ }
            throw For(folder, e, "write into the folder");
        }
        File.Delete(probe);
    }

    /// <summary>Creates <paramref name="folder"/> (and its parents) or says in one line why it cannot.</summary>
    public static void CreateFolder(string folder)
    {
        try { Directory.CreateDirectory(folder); }
        catch (Exception e) when (IsWriteError(e) || e is ArgumentException)
        {
            throw For(folder, e, "create the folder");
        }
    }
}
