namespace LatentDiffusion.Cli.Grammar;

/// <summary>
/// Old spellings that shipped docs or recipes still use keep working, and say once per use on stderr what to write
/// instead: one line, so a script's log shows it without failing.
/// </summary>
public static class DeprecationNote
{
    public static void Write(string old, string replacement) =>
        Console.Error.WriteLine($"note: `{old}` is deprecated; write `{replacement}`.");
}
