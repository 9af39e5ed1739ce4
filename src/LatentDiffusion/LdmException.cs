namespace LatentDiffusion;

/// <summary>
/// An error the user can fix: a bad path, a corrupted file, an impossible config, a class id out of range.
/// The message is one line that names the problem and the fix; the command-line tool prints it without a stack trace.
/// </summary>
public sealed class LdmException : Exception
{
    public LdmException(string message) : base(message) { }
    public LdmException(string message, Exception inner) : base(message, inner) { }
}
