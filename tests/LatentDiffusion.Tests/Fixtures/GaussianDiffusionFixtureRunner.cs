using System.Text.Json.Nodes;
using LatentDiffusion.Diffusion;
using LatentDiffusion.IO;
using LatentDiffusion.Transformers;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests.Fixtures;

/// <summary>
/// Runs `gaussian_diffusion` fixtures (DiT's diffusion/ package driven by a DiT): schedules, q_sample, training losses,
/// p_mean_variance, single DDPM/DDIM steps and full sampling loops (optionally with DiT's forward_with_cfg guidance).
/// The diffusion of each case comes from its `diffusion` object (create_diffusion arguments); the noise the official
/// code drew inside the samplers is replayed from `<case>.noise`.
/// </summary>
[FixtureKind("gaussian_diffusion")]
public sealed class GaussianDiffusionFixtureRunner : FixtureKindRunner
{
    readonly DiffusionTransformer model;
    readonly Dictionary<string, GaussianDiffusion> diffusions = new();

    public GaussianDiffusionFixtureRunner(Fixture fixture) : base(fixture)
    {
        model = DitFixtureRunner.LoadModel(fixture);   // the same tiny official DiT drives the diffusion
    }

    public override bool Supports(string op) => op is "schedule" or "q_sample" or "training_losses" or "p_mean_variance"
        or "p_sample" or "ddim_sample" or "ddim_sample_loop" or "p_sample_loop";

    GaussianDiffusion DiffusionOf(FixtureCase c)
    {
        var args = c.Section("diffusion") ?? new JsonObject();
        string key = args.ToJsonString();
        if (!diffusions.TryGetValue(key, out var d))
            diffusions[key] = d = new GaussianDiffusion(DiffusionConfig.FromCreateDiffusionArgs(args));
        return d;
    }

    /// <summary>The model bound to the case's labels, as DiT passes model_kwargs={'y': y}.</summary>
    Denoiser Conditional(Tensor y) => (x, t) => model.forward(x, t, y);

    public override Dictionary<string, Tensor> Run(FixtureCase c)
    {
        var d = DiffusionOf(c);
        bool clip = c.HasParam("clip_denoised") && c.BoolParam("clip_denoised");
        switch (c.Op)
        {
            case "schedule":
                return Schedule(c, d);
            case "q_sample":
                return new() { [c.Outputs.Keys.Single()] = d.QSample(c.Input("x_start"), c.Input("t"), c.Input("noise")) };
            case "training_losses":
            {
                using var noGrad = torch.no_grad();
                var terms = d.TrainingLosses(Conditional(c.Input("y")), c.Input("x_start"), c.Input("t"), c.Input("noise"));
                var r = new Dictionary<string, Tensor> { ["loss"] = terms.Loss };
                if (terms.Mse is not null) r["mse"] = terms.Mse;
                if (terms.Vb is not null) r["vb"] = terms.Vb;
                return r;
            }
            case "p_mean_variance":
            {
                using var noGrad = torch.no_grad();
                var o = d.PMeanVariance(Conditional(c.Input("y")), c.Input("x"), c.Input("t"), clip);
                return new() { ["mean"] = o.Mean, ["variance"] = o.Variance, ["log_variance"] = o.LogVariance, ["pred_xstart"] = o.PredXstart };
            }
            case "p_sample":
            case "ddim_sample":
            {
                using var noGrad = torch.no_grad();
                var model = Conditional(c.Input("y"));
                var step = c.Op == "p_sample"
                    ? d.PSample(model, c.Input("x"), c.Input("t"), clip, c.Input("noise"))
                    : d.DdimSample(model, c.Input("x"), c.Input("t"), clip, c.HasParam("eta") ? c.Param("eta") : 0.0, c.Input("noise"));
                return new() { ["sample"] = step.Sample, ["pred_xstart"] = step.PredXstart };
            }
            case "ddim_sample_loop":
            case "p_sample_loop":
                return Loop(c, d, clip);
            default:
                throw new NotSupportedException(c.Op);
        }
    }

    static Dictionary<string, Tensor> Schedule(FixtureCase c, GaussianDiffusion d)
    {
        var arrays = new Dictionary<string, double[]>
        {
            ["betas"] = d.Betas, ["alphas_cumprod"] = d.AlphasCumprod, ["alphas_cumprod_prev"] = d.AlphasCumprodPrev,
            ["alphas_cumprod_next"] = d.AlphasCumprodNext, ["sqrt_alphas_cumprod"] = d.SqrtAlphasCumprod,
            ["sqrt_one_minus_alphas_cumprod"] = d.SqrtOneMinusAlphasCumprod, ["log_one_minus_alphas_cumprod"] = d.LogOneMinusAlphasCumprod,
            ["sqrt_recip_alphas_cumprod"] = d.SqrtRecipAlphasCumprod, ["sqrt_recipm1_alphas_cumprod"] = d.SqrtRecipm1AlphasCumprod,
            ["posterior_variance"] = d.PosteriorVariance, ["posterior_log_variance_clipped"] = d.PosteriorLogVarianceClipped,
            ["posterior_mean_coef1"] = d.PosteriorMeanCoef1, ["posterior_mean_coef2"] = d.PosteriorMeanCoef2,
        };
        var result = new Dictionary<string, Tensor>();
        foreach (var name in c.Outputs.Keys)
        {
            if (name == "timestep_map") result[name] = torch.tensor(d.TimestepMap, dtype: ScalarType.Int64);
            else if (arrays.TryGetValue(name, out var a)) result[name] = torch.tensor(a, dtype: ScalarType.Float64);
        }
        return result;
    }

    /// <summary>
    /// A full loop from the given z, as DiT's sample.py runs it. With a cfg_scale: z doubled, labels followed by as many
    /// null labels, the model wrapped as forward_with_cfg (official: 3 guided channels unless the case says otherwise).
    /// </summary>
    Dictionary<string, Tensor> Loop(FixtureCase c, GaussianDiffusion d, bool clip)
    {
        using var noGrad = torch.no_grad();
        var z = c.Input("z");
        var y = c.Input("y");
        double? cfgScale = c.Raw["cfg_scale"]?.GetValue<double>();
        Denoiser denoiser;
        if (cfgScale is double scale)
        {
            long n = z.shape[0];
            z = torch.cat([z, z], 0);
            y = torch.cat([y, torch.full([n], (long)model.NullClass, dtype: ScalarType.Int64)], 0);
            int guided = c.HasParam("guided_channels") ? c.IntParam("guided_channels") : ClassifierFreeGuidance.OfficialDitGuidedChannels;
            denoiser = ClassifierFreeGuidance.OfficialDitForm(Conditional(y), scale, guided);
        }
        else denoiser = Conditional(y);

        // Check that the model receives the original timesteps the manifest lists.
        var given = new List<long>();
        Denoiser recording = (x, t) => { given.Add(t[0].item<long>()); return denoiser(x, t); };

        var recorded = c.Input("noise");
        int draw = 0;
        Func<long[], Tensor> noise = shape =>
        {
            var e = recorded[draw++];
            if (!e.shape.SequenceEqual(shape)) throw new InvalidOperationException($"recorded noise [{string.Join(",", e.shape)}] does not fit x [{string.Join(",", shape)}]");
            return e;
        };
        var perStep = new List<Tensor>();
        Action<SamplingStep> onStep = s => perStep.Add(s.Sample.clone().MoveToOuterDisposeScope());

        var samples = c.Op == "ddim_sample_loop"
            ? d.DdimSampleLoop(recording, z, clip, c.HasParam("eta") ? c.Param("eta") : 0.0, noise, onStep)
            : d.PSampleLoop(recording, z, clip, noise, onStep);

        if (c.ParamNode("timesteps_given_to_model") is JsonArray expectedT)
        {
            var expected = expectedT.Select(v => v!.GetValue<long>()).ToList();
            if (!expected.SequenceEqual(given))
                throw new InvalidOperationException($"the model received timesteps [{string.Join(",", given)}], the official code [{string.Join(",", expected)}]");
        }
        if (draw != recorded.shape[0])
            throw new InvalidOperationException($"the loop drew noise {draw} times, the official code {recorded.shape[0]}");

        var result = new Dictionary<string, Tensor> { ["samples"] = samples, ["per_step_samples"] = torch.stack(perStep, 0) };
        if (c.Outputs.ContainsKey("samples_cond_half")) result["samples_cond_half"] = samples.narrow(0, 0, samples.shape[0] / 2);
        return result;
    }
}
