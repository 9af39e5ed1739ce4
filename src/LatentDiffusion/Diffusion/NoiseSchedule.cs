namespace LatentDiffusion.Diffusion;

/// <summary>
/// Beta schedules β_1..β_T of the forward process, in float64 as DiT's <c>get_named_beta_schedule</c> builds them.
/// </summary>
public static class NoiseSchedule
{
    /// <summary>Schedule names <see cref="Betas"/> accepts.</summary>
    public static readonly IReadOnlyList<string> Names = ["linear", "cosine"];

    /// <summary>
    /// The betas of a named schedule: <c>linear</c> (Ho et al. 1e-4 → 0.02 at 1000 steps, both ends scaled by
    /// 1000/steps so that other step counts keep the same overall noise level; LDM and DiT use it) or <c>cosine</c>
    /// (improved DDPM, ᾱ(t) = cos²((t + 0.008)/1.008 · π/2), β capped at 0.999; DiT calls it <c>squaredcos_cap_v2</c>).
    /// </summary>
    public static double[] Betas(string name, int steps)
    {
        if (steps < 1)
            throw new LdmException($"the diffusion needs at least 1 step, got {steps}; set the number of diffusion steps to a positive value (1000 is usual).");
        return Canonical(name) switch
        {
            "linear" => Linear(steps),
            _ => Cosine(steps),
        };
    }

    /// <summary>The canonical name of a schedule (accepts DiT's alias <c>squaredcos_cap_v2</c> for cosine).</summary>
    public static string Canonical(string name) => (name ?? "").Trim().ToLowerInvariant() switch
    {
        "linear" => "linear",
        "cosine" or "squaredcos_cap_v2" => "cosine",
        _ => throw new LdmException($"unknown noise schedule '{name}'; use 'linear' or 'cosine'."),
    };

    /// <summary>Scaled linear schedule: numpy <c>linspace(scale·1e-4, scale·0.02, steps)</c> with scale = 1000/steps.</summary>
    public static double[] Linear(int steps)
    {
        double scale = 1000.0 / steps;
        return Linspace(scale * 0.0001, scale * 0.02, steps);
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
