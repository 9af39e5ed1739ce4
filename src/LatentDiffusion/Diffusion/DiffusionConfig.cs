using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace LatentDiffusion.Diffusion;

/// <summary>
/// The arguments of DiT's <c>create_diffusion</c>: everything that defines a Gaussian diffusion process.
/// Defaults are DiT's: 1000 linear-schedule steps, ε prediction, learned-range variance, MSE + VB loss.
/// </summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed record DiffusionConfig
{
    /// <summary>Steps T of the original (training) process.</summary>
    [JsonPropertyName("steps")] public int Steps { get; init; } = 1000;

    /// <summary><c>linear</c> (DiT's), <c>cosine</c> or <c>scaled-linear</c> (LDM's, with <see cref="BetaStart"/> and
    /// <see cref="BetaEnd"/>), see <see cref="NoiseSchedule"/>.</summary>
    [JsonPropertyName("schedule")] public string Schedule { get; init; } = "linear";

    /// <summary>
    /// β_1 of the scaled-linear schedule (CompVis <c>linear_start</c>, diffusers <c>beta_start</c>); null = LDM's 0.0015.
    /// Only with scaled-linear; left out of the JSON when null, so configs of the other schedules read as before.
    /// </summary>
    [JsonPropertyName("beta_start"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? BetaStart { get; init; }

    /// <summary>β_T of the scaled-linear schedule (CompVis <c>linear_end</c>, diffusers <c>beta_end</c>); null = LDM's 0.0195.</summary>
    [JsonPropertyName("beta_end"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? BetaEnd { get; init; }

    /// <summary>The model also outputs a per-element value in [-1, 1] that interpolates the log variance (improved DDPM).</summary>
    [JsonPropertyName("learn_sigma")] public bool LearnSigma { get; init; } = true;

    /// <summary>Without learned sigma: use the posterior variance β̃_t instead of β_t.</summary>
    [JsonPropertyName("sigma_small")] public bool SigmaSmall { get; init; }

    /// <summary>The model predicts x_0 instead of ε.</summary>
    [JsonPropertyName("predict_xstart")] public bool PredictXstart { get; init; }

    /// <summary>
    /// The model predicts v = √ᾱ·ε − √(1−ᾱ)·x_0 (Salimans and Ho 2022; diffusers' "v_prediction"). An ε error at low
    /// SNR becomes a huge x_0 error; v keeps both ends well conditioned, which small, briefly trained models need.
    /// </summary>
    [JsonPropertyName("predict_v")] public bool PredictV { get; init; }

    /// <summary>Train on the rescaled variational bound only (instead of MSE).</summary>
    [JsonPropertyName("use_kl")] public bool UseKl { get; init; }

    /// <summary>MSE loss with the VB term scaled by T/1000.</summary>
    [JsonPropertyName("rescale_learned_sigmas")] public bool RescaleLearnedSigmas { get; init; }

    /// <summary>Which timesteps to keep (<see cref="TimestepRespacing"/>): "" all, "25", "ddim25", "10,15,20".</summary>
    [JsonPropertyName("timestep_respacing")] public string TimestepRespacing { get; init; } = "";

    /// <summary>The same process sampled with <paramref name="samplingSteps"/> evenly spaced steps (DiT's sample.py).</summary>
    public DiffusionConfig WithSamplingSteps(int samplingSteps) =>
        samplingSteps >= 1
            ? this with { TimestepRespacing = samplingSteps.ToString(System.Globalization.CultureInfo.InvariantCulture) }
            : throw new LdmOptionException("SamplingOptions", "Steps", samplingSteps, "be at least 1", "50 is usual");

    /// <summary>The betas β_1..β_T of this process's schedule (before any respacing).</summary>
    public double[] Betas() => NoiseSchedule.Betas(Schedule, Steps, BetaStart, BetaEnd);

    /// <summary>
    /// The same process with the schedule's canonical name and, for scaled-linear, both ends written out (the defaults
    /// filled in), so a file states every number of its schedule. Validates first.
    /// </summary>
    public DiffusionConfig WithExplicitSchedule()
    {
        Validate();
        var (start, end) = NoiseSchedule.Ends(Schedule, BetaStart, BetaEnd);
        return this with { Schedule = NoiseSchedule.Canonical(Schedule), BetaStart = start, BetaEnd = end };
    }

    /// <summary>Checks every field; throws <see cref="LdmException"/> naming the bad one (an
    /// <see cref="LdmOptionException"/> for the schedule and its ends).</summary>
    public void Validate()
    {
        if (Steps < 2) throw new LdmException($"diffusion steps must be at least 2, got {Steps}; use 1000 as DiT does.");
        if (NoiseSchedule.TryCanonical(Schedule) is null)
            throw new LdmOptionException(nameof(DiffusionConfig), nameof(Schedule), Schedule, $"be one of {string.Join(", ", NoiseSchedule.Names)}",
                "linear is DiT's, scaled-linear LDM's" + NoiseSchedule.SqrtLinearNote(Schedule));
        NoiseSchedule.Ends(Schedule, BetaStart, BetaEnd);
        if (PredictV && PredictXstart) throw new LdmException("predict_v and predict_xstart are both set; a model predicts one target, choose one.");
        Diffusion.TimestepRespacing.KeptTimesteps(TimestepRespacing, Steps);
    }

    /// <summary>
    /// Reads the argument object of <c>create_diffusion(...)</c> as a fixture stores it
    /// (<c>timestep_respacing, noise_schedule, use_kl, sigma_small, predict_xstart, learn_sigma, rescale_learned_sigmas,
    /// diffusion_steps</c>); missing keys take DiT's defaults.
    /// </summary>
    public static DiffusionConfig FromCreateDiffusionArgs(JsonObject args)
    {
        var known = new HashSet<string> { "timestep_respacing", "noise_schedule", "use_kl", "sigma_small", "predict_xstart", "learn_sigma", "rescale_learned_sigmas", "diffusion_steps" };
        var unknown = args.Select(kv => kv.Key).FirstOrDefault(k => !known.Contains(k));
        if (unknown != null)
            throw new LdmException($"unknown create_diffusion argument '{unknown}'; the known ones are {string.Join(", ", known)}.");
        try
        {
            var config = new DiffusionConfig
            {
                Steps = args["diffusion_steps"]?.GetValue<int>() ?? 1000,
                Schedule = NoiseSchedule.Canonical(args["noise_schedule"]?.GetValue<string>() ?? "linear"),
                LearnSigma = args["learn_sigma"]?.GetValue<bool>() ?? true,
                SigmaSmall = args["sigma_small"]?.GetValue<bool>() ?? false,
                PredictXstart = args["predict_xstart"]?.GetValue<bool>() ?? false,
                UseKl = args["use_kl"]?.GetValue<bool>() ?? false,
                RescaleLearnedSigmas = args["rescale_learned_sigmas"]?.GetValue<bool>() ?? false,
                TimestepRespacing = args["timestep_respacing"] switch
                {
                    null => "",
                    JsonValue v when v.TryGetValue(out string? s) => s,
                    JsonValue v when v.TryGetValue(out int n) => n.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    var other => throw new LdmException($"timestep_respacing must be a string like '25' or 'ddim25', got {other.ToJsonString()}; fix the diffusion arguments."),
                },
            };
            config.Validate();
            return config;
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException)
        {
            throw new LdmException($"bad create_diffusion arguments {args.ToJsonString()}: {e.Message}; use numbers for diffusion_steps, booleans for the flags and a string for timestep_respacing.", e);
        }
    }
}
