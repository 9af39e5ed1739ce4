namespace LatentDiffusion.IO;

/// <summary>
/// Inputs that are read more than once and out of order (a model: its header first, then each tensor where the header
/// says; the tool opens it several times) must be files. A pipe such as <c>--model &lt;(cat model.safetensors)</c>
/// (a <c>/dev/fd/N</c> path) can be read once, front to back: it is refused with what to do, not read half and
/// reported as a corrupt file or an exception.
/// </summary>
public static class RandomAccessFile
{
    /// <summary>The error for <paramref name="path"/> when <paramref name="stream"/> cannot seek, else null.</summary>
    public static LdmException? ErrorIfNotSeekable(string path, Stream stream) => stream.CanSeek ? null : NotAFile(path);

    /// <summary>Opens <paramref name="path"/> to check it can seek; an <see cref="LdmException"/> for a pipe.
    /// (A missing or unreadable file is left to the reader, which says so in its own terms.)</summary>
    public static void Require(string path)
    {
        LdmException? error;
        try
        {
            using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1);
            error = ErrorIfNotSeekable(path, fs);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return; }
        if (error is not null) throw error;
    }

    static LdmException NotAFile(string path) =>
        new($"'{path}' is a pipe, not a file: a model is read more than once and out of order, which a pipe cannot do; save it to a file first (cat ... > model.safetensors) and pass that path.");
}
