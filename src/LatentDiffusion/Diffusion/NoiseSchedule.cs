namespace LatentDiffusion.Diffusion;

/// <summary>
/// Beta schedules β_1..β_T of the forward process, in float64 as DiT's <c>get_named_beta_schedule</c> and CompVis's
/// <c>make_beta_schedule</c> build them.
/// </summary>
public static class NoiseSchedule
{
    /// <summary>Schedule names <see cref="Betas"/> accepts (canonical spellings).</summary>
    public static readonly IReadOnlyList<string> Names = ["linear", "cosine", ScaledLinearName];

    /// <summary>The canonical name of LDM's schedule (CompVis calls it <c>linear</c>, diffusers <c>scaled_linear</c>).</summary>
    public const string ScaledLinearName = "scaled-linear";

    /// <summary>β_1 of <see cref="ScaledLinear"/> when none is given: LDM's class-conditional ImageNet model (cin256) and
    /// most LDM configs (<c>linear_start</c>). Stable Diffusion uses 0.00085.</summary>
    public const double ScaledLinearDefaultStart = 0.0015;

    /// <summary>β_T of <see cref="ScaledLinear"/> when none is given: LDM's <c>linear_end</c>. Stable Diffusion uses 0.012.</summary>
    public const double ScaledLinearDefaultEnd = 0.0195;

    /// <summary>
    /// The betas of a named schedule: <c>linear</c> (Ho et al. 1e-4 → 0.02 at 1000 steps, both ends scaled by
    /// 1000/steps so that other step counts keep the same overall noise level; DiT and ADM use it), <c>cosine</c>
    /// (improved DDPM, ᾱ(t) = cos²((t + 0.008)/1.008 · π/2), β capped at 0.999; DiT calls it <c>squaredcos_cap_v2</c>) or
    /// <c>scaled-linear</c> (LDM and Stable Diffusion: <see cref="ScaledLinear"/> from <paramref name="betaStart"/> to
    /// <paramref name="betaEnd"/>, by default LDM's 0.0015 → 0.0195). The ends apply to scaled-linear only.
    /// </summary>
    public static double[] Betas(string name, int steps, double? betaStart = null, double? betaEnd = null)
    {
        if (steps < 1)
            throw new LdmException($"the diffusion needs at least 1 step, got {steps}; set the number of diffusion steps to a positive value (1000 is usual).");
        string canonical = Canonical(name);
        var (start, end) = Ends(canonical, betaStart, betaEnd);
        return canonical switch
        {
            "linear" => Linear(steps),
            "cosine" => Cosine(steps),
            _ => ScaledLinear(steps, start!.Value, end!.Value),
        };
    }

    /// <summary>The canonical name of a schedule (accepts DiT's alias <c>squaredcos_cap_v2</c> for cosine and diffusers'
    /// <c>scaled_linear</c>); an unknown name throws <see cref="LdmException"/>.</summary>
    public static string Canonical(string name) => TryCanonical(name)
        ?? throw new LdmException($"unknown noise schedule '{name}'; use {string.Join(", ", Names)}{SqrtLinearNote(name)}.");

    /// <summary>The canonical name of a schedule, or null when the name is unknown.</summary>
    public static string? TryCanonical(string? name) => (name ?? "").Trim().ToLowerInvariant() switch
    {
        "linear" => "linear",
        "cosine" or "squaredcos_cap_v2" => "cosine",
        "scaled-linear" or "scaled_linear" => ScaledLinearName,
        _ => null,
    };

    /// <summary>CompVis's <c>sqrt_linear</c> is a different schedule (betas linear from start to end), easy to mistake for this one.</summary>
    internal static string SqrtLinearNote(string? name) =>
        (name ?? "").Trim().ToLowerInvariant() is "sqrt_linear" or "sqrt-linear"
            ? " (CompVis's sqrt_linear, betas linear in β, is not implemented; LDM's default 'linear' is our scaled-linear)"
            : "";

    /// <summary>
    /// The ends a schedule runs with: for scaled-linear the given ones or LDM's defaults, checked to satisfy
    /// 0 &lt; start &lt; end &lt; 1; for the other schedules none (they fix their own, and giving one is an error). Errors
    /// are <see cref="LdmOptionException"/>s of <c>DiffusionConfig.BetaStart</c> / <c>BetaEnd</c>.
    /// </summary>
    public static (double? start, double? end) Ends(string name, double? betaStart, double? betaEnd)
    {
        string canonical = Canonical(name);
        if (canonical != ScaledLinearName)
        {
            if (betaStart is { } s) throw NotForThisSchedule("BetaStart", s, canonical);
            if (betaEnd is { } e) throw NotForThisSchedule("BetaEnd", e, canonical);
            return (null, null);
        }
        double start = betaStart ?? ScaledLinearDefaultStart, end = betaEnd ?? ScaledLinearDefaultEnd;
        if (!(start > 0 && start < 1))
            throw new LdmOptionException(nameof(DiffusionConfig), nameof(DiffusionConfig.BetaStart), start, "be in (0, 1)", "LDM uses 0.0015, Stable Diffusion 0.00085");
        if (!(end > 0 && end < 1))
            throw new LdmOptionException(nameof(DiffusionConfig), nameof(DiffusionConfig.BetaEnd), end, "be in (0, 1)", "LDM uses 0.0195, Stable Diffusion 0.012");
        if (!(start < end))
            throw new LdmOptionException(nameof(DiffusionConfig), nameof(DiffusionConfig.BetaEnd), end, $"be greater than the start {start.ToString(System.Globalization.CultureInfo.InvariantCulture)}",
                "the noise grows along the schedule");
        return (start, end);
    }

    static LdmOptionException NotForThisSchedule(string property, double value, string schedule) =>
        new(nameof(DiffusionConfig), property, value, $"be left out with the {schedule} schedule", $"only {ScaledLinearName} takes its ends");

    /// <summary>Scaled linear schedule: numpy <c>linspace(scale·1e-4, scale·0.02, steps)</c> with scale = 1000/steps.</summary>
    public static double[] Linear(int steps)
    {
        double scale = 1000.0 / steps;
        return Linspace(scale * 0.0001, scale * 0.02, steps);
    }

    /// <summary>
    /// LDM's schedule (CompVis <c>make_beta_schedule("linear", steps, linear_start, linear_end)</c>; diffusers'
    /// <c>scaled_linear</c>): √β linear from √start to √end, squared, in float64. Unlike <see cref="Linear"/> the ends are
    /// used as given for any step count. CompVis spaces √β with <c>torch.linspace</c>, whose vectorised CPU kernel rounds
    /// some points differently from numpy's; the two agree to within an ulp.
    /// </summary>
    public static double[] ScaledLinear(int steps, double betaStart, double betaEnd)
    {
        Ends(ScaledLinearName, betaStart, betaEnd);
        var roots = Linspace(Math.Sqrt(betaStart), Math.Sqrt(betaEnd), steps);
        return roots.Select(r => r * r).ToArray();
    }

    /// <summary>Improved-DDPM cosine schedule, β_i = min(1 − ᾱ((i+1)/T)/ᾱ(i/T), maxBeta).</summary>
    public static double[] Cosine(int steps, double maxBeta = 0.999)
    {
        static double AlphaBar(double t) { double c = Math.Cos((t + 0.008) / 1.008 * Math.PI / 2); return c * c; }
        var betas = new double[steps];
        for (int i = 0; i < steps; i++)
        {
            double t1 = (double)i / steps, t2 = (double)(i + 1) / steps;
            betas[i] = Math.Min(1 - AlphaBar(t2) / AlphaBar(t1), maxBeta);
        }
        return betas;
    }

    /// <summary>numpy's linspace arithmetic (start + i·step, last element exactly stop), so betas match to the last bit.</summary>
    static double[] Linspace(double start, double stop, int num)
    {
        var y = new double[num];
        if (num == 1) { y[0] = start; return y; }
        double step = (stop - start) / (num - 1);
        for (int i = 0; i < num; i++) y[i] = i * step + start;
        y[num - 1] = stop;
        return y;
    }
}
