using LatentDiffusion.Diffusion;

namespace LatentDiffusion.Cli.Grammar;

/// <summary>
/// The one mapping between <see cref="SamplerKind"/> and its command-line name, used by <c>--sampler</c>, its help
/// and every report, so a name the tool prints is a name it accepts.
/// </summary>
public static class SamplerNames
{
    static readonly (SamplerKind Kind, string Name)[] Table =
    [
        (SamplerKind.Ddim, "ddim"), (SamplerKind.Ddpm, "ddpm"), (SamplerKind.DpmSolverPP2M, "dpm++2m"),
    ];

    /// <summary>"ddim, ddpm or dpm++2m".</summary>
    public static string List => string.Join(", ", Table[..^1].Select(t => t.Name)) + " or " + Table[^1].Name;

    public static string Of(SamplerKind kind) => Table.First(t => t.Kind == kind).Name;

    public static SamplerKind Parse(string? text, string flag = "--sampler")
    {
        string name = (text ?? "").Trim().ToLowerInvariant();
        foreach (var (kind, known) in Table)
            if (known == name) return kind;
        throw new LdmException($"{flag} '{text}' is not a sampler; write {List}.");
    }
}
