using LatentDiffusion.Diffusion;

namespace LatentDiffusion.Cli.Grammar;

/// <summary>
/// The one mapping between <see cref="SamplerKind"/> and its command-line name, used by <c>--sampler</c>, its help
/// and every report, so a name the tool prints is a name it accepts.
/// </summary>
public static class SamplerNames
{
    /// <summary>Every sampler, in the order help lists them; the names are the library's (<see cref="Samplers.Name"/>).</summary>
    static readonly (SamplerKind Kind, string Name)[] Table =
        [.. new[] { SamplerKind.Ddim, SamplerKind.Ddpm, SamplerKind.DpmSolverPP2M }.Select(k => (k, Samplers.Name(k)))];

    /// <summary>"ddim, ddpm or dpm++2m".</summary>
    public static string List => string.Join(", ", Table[..^1].Select(t => t.Name)) + " or " + Table[^1].Name;

    public static string Of(SamplerKind kind) => Table.First(t => t.Kind == kind).Name;

    /// <summary>The sampler of an optional <c>--sampler</c> value: null when none was given.</summary>
    public static SamplerKind? ParseOptional(string? text) => text is null ? null : Parse(text);

    public static SamplerKind Parse(string? text, string flag = "--sampler")
    {
        string name = (text ?? "").Trim().ToLowerInvariant();
        foreach (var (kind, known) in Table)
            if (known == name) return kind;
        throw new LdmException($"{flag} '{text}' is not a sampler; write {List}.");
    }
}
