namespace LatentDiffusion.IO;

/// <summary>
/// Writes a file under a temporary name in the same folder and renames it into place when complete,
/// so a crash or an error never leaves a half-written checkpoint or image behind.
/// </summary>
public static class AtomicFile
{
    /// <summary>Writes <paramref name="path"/> through <paramref name="write"/>, flushed to disk and renamed into place;
    /// creates the folder. On any error the temporary file is removed and the old file (if any) is left unchanged.</summary>
    public static void Write(string path, Action<Stream> write)
    {
        if (string.IsNullOrWhiteSpace(path)) throw new LdmException("the path to write is empty; give a file path.");
        string full = Path.GetFullPath(path);
        string dir = Path.GetDirectoryName(full)!;
        WriteFailure.CreateFolder(dir);
        string tmp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                write(fs);
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true);
        }
        catch (Exception e)
        {
            try { File.Delete(tmp); } catch { /* best effort: the temp file is hidden and named as such */ }
            // A full disk, a read-only file system or a missing permission is the user's to fix; anything else is a bug.
            if (WriteFailure.IsWriteError(e)) throw WriteFailure.For(full, e);
            throw;
        }
    }

    /// <summary>Writes <paramref name="text"/> as UTF-8 (no BOM), atomically.</summary>
    public static void WriteAllText(string path, string text) =>
        Write(path, s => { using var w = new StreamWriter(s, leaveOpen: true); w.Write(text); });

    /// <summary>Writes <paramref name="bytes"/>, atomically.</summary>
    public static void WriteAllBytes(string path, ReadOnlySpan<byte> bytes)
    {
        byte[] copy = bytes.ToArray();
        Write(path, s => s.Write(copy));
    }

    /// <summary>Copies a file so that <paramref name="path"/> is either the old file or the whole copy.</summary>
    public static void Copy(string source, string path) => Write(path, stream =>
    {
        using var input = File.OpenRead(source);
        input.CopyTo(stream);
    });
}
