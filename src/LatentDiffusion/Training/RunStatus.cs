using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using LatentDiffusion.IO;

namespace LatentDiffusion.Training;

/// <summary>
/// How a training run last ended, as <c>status.json</c> in its folder: <c>failed</c> (with the one-line error) or
/// <c>interrupted</c> (cancelled, checkpoint written). A run removes the file when it starts, so a folder without it
/// is running, finished at its step budget (its metrics log says which), or was stopped without a word (killed).
/// Readers of the folder alone (<c>ldm serve</c>'s runs page) tell failed from interrupted with it.
/// </summary>
public sealed record RunStatus(
    [property: JsonPropertyName("state")] string State,
    [property: JsonPropertyName("step")] long Step,
    [property: JsonPropertyName("error")] string? Error,
    [property: JsonPropertyName("time")] string Time)
{
    /// <summary>The file's name in the run folder.</summary>
    public const string File = "status.json";
    /// <summary>The run ended on an error (<see cref="Error"/>).</summary>
    public const string Failed = "failed";
    /// <summary>The run was cancelled before its step budget; its checkpoint resumes it.</summary>
    public const string Interrupted = "interrupted";

    /// <summary>The status in <paramref name="runDir"/>, or null when there is none or it cannot be read (being written, damaged).</summary>
    public static RunStatus? Read(string runDir)
    {
        try
        {
            var status = JsonSerializer.Deserialize<RunStatus>(System.IO.File.ReadAllText(Path.Combine(runDir, File)));
            return status is { State: Failed or Interrupted } ? status : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException or NotSupportedException) { return null; }
    }

    /// <summary>Records how the run ended; best effort: a folder that cannot take the file (full disk) leaves the error the caller reports.</summary>
    internal static void Write(string runDir, string state, long step, string? error)
    {
        var status = new RunStatus(state, step, error is null ? null : FirstLine(error), DateTime.UtcNow.ToString("O", CultureInfo.InvariantCulture));
        try { AtomicFile.WriteAllText(Path.Combine(runDir, File), JsonSerializer.Serialize(status)); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or LdmException) { }
    }

    /// <summary>Forgets how an earlier attempt ended, as a run starts again.</summary>
    internal static void Clear(string runDir)
    {
        try { System.IO.File.Delete(Path.Combine(runDir, File)); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    static string FirstLine(string text)
    {
        int end = text.IndexOfAny(['\r', '\n']);
        return (end < 0 ? text : text[..end]).Trim();
    }
}
