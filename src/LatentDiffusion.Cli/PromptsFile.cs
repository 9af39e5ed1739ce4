using System.Text;

namespace LatentDiffusion.Cli;

/// <summary>
/// Reads <c>--prompts-file</c>: one caption per line, blank lines skipped. Streamed with fixed limits (lines, line
/// length, total size), so a wrong file (<c>/dev/zero</c>, a binary, a huge log, a pipe that never ends) is refused
/// after reading at most <see cref="MaxChars"/> characters instead of being read whole into memory.
/// </summary>
public static class PromptsFile
{
    /// <summary>The most prompts a file may hold: a fixed cap far beyond what one sampling run draws.</summary>
    public const int MaxPrompts = 65_536;
    /// <summary>The longest line: far more than any text model's token limit (tens of words).</summary>
    public const int MaxLineChars = 1_000;
    /// <summary>The most characters read in all, blank lines included.</summary>
    public const int MaxChars = 16 << 20;

    /// <summary>The non-blank lines, trimmed; an <see cref="LdmException"/> naming the file when a limit is passed.</summary>
    public static List<string> Read(string path, string option = "--prompts-file")
    {
        var prompts = new List<string>();
        var line = new StringBuilder();
        var buffer = new char[8192];
        long total = 0;
        int lineNumber = 1;
        try
        {
            using var reader = new StreamReader(new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1), Encoding.UTF8);
            int n;
            while ((n = reader.Read(buffer, 0, buffer.Length)) > 0)
            {
                total += n;
                if (total > MaxChars)
                    throw new LdmException($"{option} '{path}' is longer than {MaxChars >> 20} MB; write at most {MaxPrompts} captions, one per line.");
                for (int i = 0; i < n; i++)
                {
                    char c = buffer[i];
                    if (c == '\n') { Add(prompts, line, path, option); lineNumber++; continue; }
                    line.Append(c);
                    if (line.Length > MaxLineChars)
                        throw new LdmException($"{option} '{path}': line {lineNumber} is longer than {MaxLineChars} characters; write one short caption per line (is it a text file?).");
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new LdmException($"cannot read {option} '{path}': {e.Message}; check the path and its permissions.");
        }
        Add(prompts, line, path, option);
        if (prompts.Count == 0) throw new LdmException($"{option} '{path}' holds no prompts; write one caption per line.");
        return prompts;
    }

    static void Add(List<string> prompts, StringBuilder line, string path, string option)
    {
        string text = line.ToString().Trim();
        line.Clear();
        if (text.Length == 0) return;
        if (prompts.Count == MaxPrompts)
            throw new LdmException($"{option} '{path}' holds more than {MaxPrompts} prompts; split it over several runs.");
        prompts.Add(text);
    }
}
