using System.Text.Json;
using LatentDiffusion.Cli.Commands;
using LatentDiffusion.Denoisers;
using LatentDiffusion.Diffusion;
using LatentDiffusion.Pipelines;
using LatentDiffusion.Transformers;

namespace LatentDiffusion.Tests;

/// <summary>
/// LDM's noise schedule (<c>scaled-linear</c>: CompVis <c>make_beta_schedule("linear", n, start, end)</c>, diffusers
/// <c>scaled_linear</c>): √β linear from √start to √end, squared, in float64.
/// </summary>
public sealed class ScaledLinearScheduleTests : IDisposable
{
    readonly string _dir = RepoPaths.NewTempDir("schedule");
    public void Dispose() { try { Directory.Delete(_dir, true); } catch (IOException) { } }

    /// <summary>The formula written out on its own: (√s + i·(√e − √s)/(n − 1))².</summary>
    static double Expected(double start, double end, int i, int n)
    {
        double root = Math.Sqrt(start) + i * (Math.Sqrt(end) - Math.Sqrt(start)) / (n - 1);
        return root * root;
    }

    [Theory]
    [InlineData(0.0015, 0.0195)]     // LDM cin256 (the default)
    [InlineData(0.00085, 0.012)]     // Stable Diffusion
    public void Betas_FollowTheFormula(double start, double end)
    {
        var b = NoiseSchedule.Betas("scaled-linear", 1000, start, end);
        Assert.Equal(1000, b.Length);
        foreach (int i in new[] { 0, 1, 499, 500, 998, 999 })
            Assert.Equal(Expected(start, end, i, 1000), b[i], 1e-17);
        for (int i = 1; i < b.Length; i++) Assert.True(b[i] > b[i - 1]);
    }

    [Fact]
    public void Betas_MatchValuesComputedTo40Digits()
    {
        // Computed with bc (scale=40): a = sqrt(0.0015), z = sqrt(0.0195), r = a + (z − a)·i/999, β = r². Float64
        // arithmetic lands within an ulp or two of them (an ulp is 1.7e-18 at 0.008, 3.5e-18 at 0.0195).
        const double ulps = 1e-17;
        var ldm = NoiseSchedule.Betas("scaled-linear", 1000);   // LDM's ends are the default
        Assert.Equal(0.0015, ldm[0], ulps);
        Assert.Equal(0.0015078346820481534, ldm[1], ulps);
        Assert.Equal(0.0079451569985248472, ldm[499], ulps);
        Assert.Equal(0.0195, ldm[999], ulps);
        // Stable Diffusion's ends: β_500 (index 499) = 0.00480379298055071782…, and √ᾱ_T = 0.0682649142…, the
        // terminal signal level Lin et al. (2024, "Common diffusion noise schedules and sample steps are flawed")
        // report for Stable Diffusion as 0.068265.
        var sd = new GaussianDiffusion(new DiffusionConfig { Schedule = "scaled-linear", BetaStart = 0.00085, BetaEnd = 0.012 });
        Assert.Equal(0.0048037929805507178, NoiseSchedule.Betas("scaled-linear", 1000, 0.00085, 0.012)[499], ulps);
        Assert.Equal(0.0682649142171675, Math.Sqrt(sd.AlphasCumprod[^1]), 1e-13);
    }

    [Fact]
    public void Names_AcceptDiffusersSpelling_AndRefuseCompVisSqrtLinear()
    {
        Assert.Equal(NoiseSchedule.Betas("scaled-linear", 100), NoiseSchedule.Betas("scaled_linear", 100));
        Assert.Equal("scaled-linear", NoiseSchedule.Canonical(" Scaled_Linear "));
        // CompVis's sqrt_linear is another schedule (β linear from start to end): refused, with what to use instead.
        var e = Assert.Throws<LdmException>(() => NoiseSchedule.Betas("sqrt_linear", 100));
        Assert.Contains("our scaled-linear", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Theory]
    [InlineData(0.0, 0.012, "BetaStart", "DiffusionConfig.BetaStart must be in (0, 1), got 0; LDM uses 0.0015, Stable Diffusion 0.00085.")]
    [InlineData(-0.001, 0.012, "BetaStart", null)]
    [InlineData(double.NaN, 0.012, "BetaStart", null)]
    [InlineData(0.001, 1.0, "BetaEnd", "DiffusionConfig.BetaEnd must be in (0, 1), got 1; LDM uses 0.0195, Stable Diffusion 0.012.")]
    [InlineData(0.02, 0.01, "BetaEnd", "DiffusionConfig.BetaEnd must be greater than the start 0.02, got 0.01; the noise grows along the schedule.")]
    [InlineData(0.01, 0.01, "BetaEnd", null)]
    public void BadEnds_AreOptionErrors(double start, double end, string property, string? message)
    {
        var config = new DiffusionConfig { Schedule = "scaled-linear", BetaStart = start, BetaEnd = end };
        var e = Assert.Throws<LdmOptionException>(config.Validate);
        Assert.Equal(property, e.Property);
        if (message is not null) Assert.Equal(message, e.Message);
        Assert.Throws<LdmOptionException>(() => NoiseSchedule.Betas("scaled-linear", 10, start, end));
    }

    [Fact]
    public void EndsWithAnotherSchedule_AndUnknownSchedules_AreOptionErrors()
    {
        var e = Assert.Throws<LdmOptionException>(new DiffusionConfig { BetaStart = 0.001 }.Validate);
        Assert.Equal("DiffusionConfig.BetaStart must be left out with the linear schedule, got 0.001; only scaled-linear takes its ends.", e.Message);
        Assert.Equal("BetaEnd", Assert.Throws<LdmOptionException>(new DiffusionConfig { Schedule = "cosine", BetaEnd = 0.02 }.Validate).Property);
        var unknown = Assert.Throws<LdmOptionException>(new DiffusionConfig { Schedule = "quadratic" }.Validate);
        Assert.Equal("DiffusionConfig.Schedule must be one of linear, cosine, scaled-linear, got quadratic; linear is DiT's, scaled-linear LDM's.", unknown.Message);
        Assert.Equal("--noise-schedule must be one of linear, cosine, scaled-linear, got quadratic; linear is DiT's, scaled-linear LDM's.",
            Cli.OptionNames.MessageOf(unknown));
        Assert.Equal("--beta-start", Cli.OptionNames.FlagOf(e.Owner, e.Property));
    }

    [Fact]
    public void Json_OfOtherSchedulesIsUnchanged_AndTheEndsRoundTrip()
    {
        // No beta keys unless set: configs (and run settings) written before read and compare as before.
        Assert.Equal("""{"steps":1000,"schedule":"linear","learn_sigma":true,"sigma_small":false,"predict_xstart":false,"predict_v":false,"use_kl":false,"rescale_learned_sigmas":false,"timestep_respacing":""}""",
            JsonSerializer.Serialize(new DiffusionConfig()));
        var ldm = new DiffusionConfig { Schedule = "scaled_linear" }.WithExplicitSchedule();
        Assert.Equal(new DiffusionConfig { Schedule = "scaled-linear", BetaStart = 0.0015, BetaEnd = 0.0195 }, ldm);
        string json = JsonSerializer.Serialize(ldm);
        Assert.Contains("\"beta_start\":0.0015,\"beta_end\":0.0195", json);
        Assert.Equal(ldm, JsonSerializer.Deserialize<DiffusionConfig>(json));
        Assert.Throws<JsonException>(() => JsonSerializer.Deserialize<DiffusionConfig>("""{"schedule":"scaled-linear","beta_begin":0.001}"""));
        // Linear stays without ends when spelled out.
        Assert.Equal(new DiffusionConfig(), new DiffusionConfig().WithExplicitSchedule());
    }

    [Fact]
    public void ModelSavedWithIt_LoadsWithItsScheduleAndSamples()
    {
        var cfg = TinyModels.Config();
        var diffusion = new DiffusionConfig { LearnSigma = cfg.LearnSigma, Schedule = "scaled-linear", BetaStart = 0.00085, BetaEnd = 0.012 };
        string path = Path.Combine(_dir, "sd-schedule.safetensors");
        using (var model = TinyModels.RandomModel(cfg))
            DenoiserCheckpoint.Save(path, model, TinyModels.Info(cfg) with { Diffusion = diffusion });
        var (loaded, info) = DenoiserCheckpoint.Load(path);
        loaded.Dispose();
        Assert.Equal(diffusion, info.Diffusion);
        // The process recomputes β from ᾱ (as DiT's respacing does), so compare to rounding.
        var process = new GaussianDiffusion(info.Diffusion).Betas;
        var schedule = NoiseSchedule.Betas("scaled-linear", 1000, 0.00085, 0.012);
        Assert.Equal(schedule.Length, process.Length);
        Assert.All(schedule.Zip(process), pair => Assert.Equal(pair.First, pair.Second, 1e-15));
        using var pipe = DiffusionPipeline.Load(path);
        using var images = pipe.Generate([0, 5], new SamplingOptions { Steps = 3, Seed = 2 });
        Assert.Equal(2, images.Count);
        Assert.True(images.Images.isfinite().all().item<bool>());
    }

    [Fact]
    public void TrainCommand_StoresTheEndsItTrainsWith()
    {
        var choice = new TrainCommand.ModelChoice("S/4", BlockType.InContext, false, 32, 1, 2, 8, LearnSigma: false, NoiseSchedule: "scaled-linear");
        Assert.Equal(new DiffusionConfig { LearnSigma = false, Schedule = "scaled-linear", BetaStart = 0.0015, BetaEnd = 0.0195 }, TrainCommand.DiffusionFor(choice));
        var sd = TrainCommand.DiffusionFor(choice with { BetaStart = 0.00085, BetaEnd = 0.012, Prediction = "v" });
        Assert.Equal((0.00085, 0.012, true), (sd.BetaStart!.Value, sd.BetaEnd!.Value, sd.PredictV));
        Assert.Equal(new DiffusionConfig { LearnSigma = false }, TrainCommand.DiffusionFor(choice with { NoiseSchedule = "linear" }));
    }
}
