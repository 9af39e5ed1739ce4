using System.Text.Json;
using System.Text.Json.Nodes;
using LatentDiffusion.Diffusion;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests;

public sealed class DiffusionTests
{
    /// <summary>Same shape and bit-identical values.</summary>
    static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && (a == b).all().item<bool>();

    // ---------------------------------------------------------------- schedules

    [Fact]
    public void LinearScheduleHasDitEndpointsAndIsMonotone()
    {
        var b = NoiseSchedule.Betas("linear", 1000);
        Assert.Equal(1000, b.Length);
        Assert.Equal(1e-4, b[0], 15);
        Assert.Equal(0.02, b[^1], 15);
        Assert.Equal(1e-4 + 500 * (0.02 - 1e-4) / 999, b[500], 15);
        for (int i = 1; i < b.Length; i++) Assert.True(b[i] > b[i - 1]);

        // Fewer steps: both ends scaled by 1000/steps so the total noise stays comparable.
        var b250 = NoiseSchedule.Betas("linear", 250);
        Assert.Equal(4e-4, b250[0], 15);
        Assert.Equal(0.08, b250[^1], 15);

        var d = new GaussianDiffusion(new DiffusionConfig());
        for (int i = 1; i < d.NumTimesteps; i++) Assert.True(d.AlphasCumprod[i] < d.AlphasCumprod[i - 1]);
        Assert.Equal(1.0, d.AlphasCumprodPrev[0]);
        Assert.Equal(0.0, d.AlphasCumprodNext[^1]);
        Assert.InRange(d.AlphasCumprod[^1], 3e-5, 5e-5); // ᾱ_T ≈ 4.04e-5 for DDPM's schedule
        Assert.Equal(d.PosteriorLogVarianceClipped[1], d.PosteriorLogVarianceClipped[0]);
        Assert.Equal(0.0, d.PosteriorVariance[0]);
    }

    [Fact]
    public void CosineScheduleMatchesImprovedDdpm()
    {
        var b = NoiseSchedule.Betas("cosine", 1000);
        Assert.Equal(4.128422482196914e-05, b[0], 15);
        Assert.Equal(0.003155691441585007, b[500], 15);
        Assert.Equal(0.7499993929011166, b[998], 13);
        Assert.Equal(0.999, b[999]); // capped
        for (int i = 1; i < b.Length; i++) Assert.True(b[i] >= b[i - 1]);
        Assert.Equal(b, NoiseSchedule.Betas("squaredcos_cap_v2", 1000));
        Assert.Throws<LdmException>(() => NoiseSchedule.Betas("quadratic", 1000));
    }

    // ---------------------------------------------------------------- respacing

    [Fact]
    public void RespacingKeepsTheOfficialTimesteps()
    {
        long[] expected25 = [0, 42, 83, 125, 166, 208, 250, 291, 333, 375, 416, 458, 500, 541, 583, 624, 666, 708, 749, 791, 832, 874, 916, 957, 999];
        Assert.Equal(expected25, TimestepRespacing.KeptTimesteps("25", 1000));
        Assert.Equal(Enumerable.Range(0, 25).Select(i => 40L * i), TimestepRespacing.KeptTimesteps("ddim25", 1000));
        Assert.Equal(Enumerable.Range(0, 1000).Select(i => (long)i), TimestepRespacing.KeptTimesteps("", 1000));
        // Sections (the reference's docstring example: 300 steps as 10, 15, 20).
        var sections = TimestepRespacing.KeptTimesteps("10,15,20", 300);
        Assert.Equal(45, sections.Length);
        Assert.Equal([0L, 11, 22, 33, 44, 55, 66, 77, 88, 99, 100, 107], sections[..12]);
        Assert.Equal([289L, 294, 299], sections[^3..]);

        var d = new GaussianDiffusion(new DiffusionConfig { TimestepRespacing = "25" });
        Assert.Equal(25, d.NumTimesteps);
        Assert.Equal(expected25, d.TimestepMap);
        var full = new GaussianDiffusion(new DiffusionConfig());
        // Respacing keeps ᾱ at the kept timesteps.
        for (int i = 0; i < 25; i++) Assert.Equal(full.AlphasCumprod[expected25[i]], d.AlphasCumprod[i], 12);
        using var t = torch.tensor(new long[] { 0, 12, 24 });
        using var mapped = d.OriginalTimesteps(t);
        Assert.Equal([0L, 500, 999], mapped.data<long>().ToArray());
    }

    [Theory]
    [InlineData("abc")]
    [InlineData("ddim")]
    [InlineData("ddimx")]
    [InlineData("ddim3000")]
    [InlineData("2000")]
    [InlineData("0")]
    [InlineData("10,,5")]
    [InlineData("-5")]
    public void BadRespacingIsAUserError(string spec)
    {
        Assert.Throws<LdmException>(() => new GaussianDiffusion(new DiffusionConfig { TimestepRespacing = spec }));
        Assert.Throws<LdmException>(() => DiffusionConfig.FromCreateDiffusionArgs(new JsonObject { ["timestep_respacing"] = spec }));
    }

    [Fact]
    public void ConfigReadsCreateDiffusionArgsAndRoundTripsAsJson()
    {
        var args = JsonNode.Parse("""{"timestep_respacing":"ddim50","noise_schedule":"squaredcos_cap_v2","use_kl":false,"sigma_small":true,"predict_xstart":true,"learn_sigma":false,"rescale_learned_sigmas":true,"diffusion_steps":500}""")!.AsObject();
        var c = DiffusionConfig.FromCreateDiffusionArgs(args);
        Assert.Equal(new DiffusionConfig { Steps = 500, Schedule = "cosine", SigmaSmall = true, PredictXstart = true, LearnSigma = false, RescaleLearnedSigmas = true, TimestepRespacing = "ddim50" }, c);
        var back = JsonSerializer.Deserialize<DiffusionConfig>(JsonSerializer.Serialize(c));
        Assert.Equal(c, back);
        Assert.Contains("\"timestep_respacing\":\"ddim50\"", JsonSerializer.Serialize(c));
        Assert.Equal(new DiffusionConfig(), DiffusionConfig.FromCreateDiffusionArgs(new JsonObject()));
        Assert.Throws<LdmException>(() => DiffusionConfig.FromCreateDiffusionArgs(new JsonObject { ["diffusion_step"] = 10 }));

        var d = new GaussianDiffusion(c);
        Assert.Equal(ModelMeanType.StartX, d.MeanType);
        Assert.Equal(ModelVarianceType.FixedSmall, d.VarianceType);
        Assert.Equal(DiffusionLossType.RescaledMse, d.LossType);
        Assert.Equal(50, d.NumTimesteps);
    }

    // ---------------------------------------------------------------- forward process

    [Fact]
    public void QSampleAtTheFirstStepIsAlmostTheData()
    {
        using var scope = torch.NewDisposeScope();
        var g = new Generator(11);
        var d = new GaussianDiffusion(new DiffusionConfig());
        var x0 = torch.rand([3, 4, 8, 8], generator: g) * 2 - 1;
        var noise = torch.randn([3, 4, 8, 8], generator: g);
        var xt0 = d.QSample(x0, torch.zeros(3, dtype: ScalarType.Int64), noise);
        // √ᾱ_0 = √(1 − 1e-4), √(1 − ᾱ_0) = 0.01.
        Assert.True((xt0 - x0).abs().max().item<float>() < 0.01f * noise.abs().max().item<float>() + 1e-4f);
        var xtT = d.QSample(x0, torch.full([3], 999L), noise);
        Assert.True((xtT - noise).abs().max().item<float>() < 0.01f * (1 + noise.abs().max().item<float>()));
    }

    // ---------------------------------------------------------------- sampling

    /// <summary>The exact ε of x_t for a known x_0: what a perfect denoiser would predict.</summary>
    static Denoiser EpsOracle(GaussianDiffusion full, Tensor x0) => (x, t) =>
    {
        var idx = t.data<long>().ToArray();
        var a = torch.tensor(idx.Select(i => (float)full.SqrtAlphasCumprod[i]).ToArray(), [idx.Length, 1, 1, 1]);
        var s = torch.tensor(idx.Select(i => (float)full.SqrtOneMinusAlphasCumprod[i]).ToArray(), [idx.Length, 1, 1, 1]);
        return (x - a * x0) / s;
    };

    [Fact]
    public void DdimWithAPerfectDenoiserRecoversTheDataAndKeepsItsNoise()
    {
        using var scope = torch.NewDisposeScope();
        var g = new Generator(5);
        var full = new GaussianDiffusion(new DiffusionConfig { LearnSigma = false });
        var d = new GaussianDiffusion(new DiffusionConfig { LearnSigma = false, TimestepRespacing = "50" });
        var x0 = torch.rand([2, 4, 8, 8], generator: g) * 2 - 1;
        var z = torch.randn([2, 4, 8, 8], generator: g);
        var oracle = EpsOracle(full, x0);
        // The deterministic DDIM path keeps the ε it starts with: x_s = √ᾱ_s x_0 + √(1 − ᾱ_s) ε at every step.
        var eps0 = (z - (float)d.SqrtAlphasCumprod[^1] * x0) / (float)d.SqrtOneMinusAlphasCumprod[^1];
        double worst = 0;
        var samples = d.DdimSampleLoop(oracle, z, clipDenoised: false, eta: 0.0, g, s =>
        {
            if (s.Index == 0) return;
            double ab = d.AlphasCumprodPrev[s.Index];
            var implied = (s.Sample - (float)Math.Sqrt(ab) * x0) / (float)Math.Sqrt(1 - ab);
            worst = Math.Max(worst, (implied - eps0).abs().max().item<float>());
        });
        Assert.True(worst < 1e-3, $"DDIM drifted from its initial noise by {worst}");
        Assert.True((samples - x0).abs().max().item<float>() < 1e-4);
        Assert.Equal(ScalarType.Float32, samples.dtype);
    }

    /// <summary>The v a perfect model predicts for data x0: v = √ᾱ ε − √(1−ᾱ) x0 with ε implied by x_t.</summary>
    static Denoiser VOracle(GaussianDiffusion full, Tensor x0) => (x, t) =>
    {
        var idx = t.data<long>().ToArray();
        var a = torch.tensor(idx.Select(i => (float)full.SqrtAlphasCumprod[i]).ToArray(), [idx.Length, 1, 1, 1]);
        var s = torch.tensor(idx.Select(i => (float)full.SqrtOneMinusAlphasCumprod[i]).ToArray(), [idx.Length, 1, 1, 1]);
        var eps = (x - a * x0) / s;
        return a * eps - s * x0;
    };

    [Fact]
    public void VPredictionRecoversXStartAndItsLossVanishesForAPerfectModel()
    {
        using var scope = torch.NewDisposeScope();
        var g = new Generator(11);
        var d = new GaussianDiffusion(new DiffusionConfig { LearnSigma = false, PredictV = true });
        Assert.Equal(ModelMeanType.Velocity, d.MeanType);
        var x0 = torch.rand([4, 3, 8, 8], generator: g) * 2 - 1;
        var noise = torch.randn([4, 3, 8, 8], generator: g);
        var t = torch.tensor(new long[] { 0, 250, 700, 999 });
        var xt = d.QSample(x0, t, noise);
        var v = d.Velocity(x0, t, noise);
        Assert.True((d.PredictXstartFromV(xt, t, v) - x0).abs().max().item<float>() < 1e-5);
        Assert.True(d.TrainingLosses(VOracle(d, x0), x0, t, noise).Loss.max().item<float>() < 1e-10);
        // A model that is wrong by δ in v is wrong by √(1−ᾱ)·δ in x0: at t = 999 almost exactly δ, never amplified as ε errors are.
        var off = d.PMeanVariance((x, tt) => VOracle(d, x0)(x, tt) + 0.01f, xt, t, clipDenoised: false).PredXstart - x0;
        Assert.True(off.abs().max().item<float>() <= 0.0101f);
        var ddim = new GaussianDiffusion(new DiffusionConfig { LearnSigma = false, PredictV = true, TimestepRespacing = "ddim25" });
        var samples = ddim.DdimSampleLoop(VOracle(d, x0), torch.randn([4, 3, 8, 8], generator: g), false, 0.0, g);
        Assert.True((samples - x0).abs().max().item<float>() < 1e-3);
        Assert.Throws<LdmException>(() => new DiffusionConfig { PredictV = true, PredictXstart = true }.Validate());
    }

    /// <summary>
    /// Data x_0 ~ N(μ, s²) per element has an exact denoiser, E[x_0 | x_t] = μ + s²√ᾱ/(ᾱs² + 1 − ᾱ)·(x_t − √ᾱ μ), and an
    /// exact probability-flow ODE solution from x_T: x_0 = μ + s·(x_T − √ᾱ_T μ)/√(ᾱ_T s² + 1 − ᾱ_T).
    /// </summary>
    static Denoiser GaussianDataDenoiser(GaussianDiffusion full, double mu, double s) => (x, t) =>
    {
        var idx = t.data<long>().ToArray();
        var ab = idx.Select(i => full.AlphasCumprod[i]).ToArray();
        var gain = torch.tensor(ab.Select(a => (float)(s * s * Math.Sqrt(a) / (a * s * s + 1 - a))).ToArray(), [idx.Length, 1, 1, 1]);
        var sa = torch.tensor(ab.Select(a => (float)Math.Sqrt(a)).ToArray(), [idx.Length, 1, 1, 1]);
        var so = torch.tensor(ab.Select(a => (float)Math.Sqrt(1 - a)).ToArray(), [idx.Length, 1, 1, 1]);
        var x0 = mu + gain * (x - sa * mu);
        return (x - sa * x0) / so;
    };

    [Fact]
    public void DpmSolverPlusPlusSolvesTheOdeBetterThanDdimInFewSteps()
    {
        using var scope = torch.NewDisposeScope();
        const double mu = 0.3, s = 1.0;
        var config = new DiffusionConfig { LearnSigma = false };
        var full = new GaussianDiffusion(config);
        var model = GaussianDataDenoiser(full, mu, s);
        var z = torch.randn([2, 4, 8, 8], generator: new Generator(12));
        double Error(SamplerKind kind, int steps)
        {
            var d = Samplers.CreateDiffusion(config, steps);
            double abT = d.AlphasCumprod[^1];
            var exact = mu + s * (z - Math.Sqrt(abT) * mu) / Math.Sqrt(abT * s * s + 1 - abT);
            var x = Samplers.Sample(d, kind, model, z, new Generator(1));
            return (x - exact).abs().max().item<float>();
        }
        double dpm10 = Error(SamplerKind.DpmSolverPP2M, 10), ddim10 = Error(SamplerKind.Ddim, 10);
        double dpm25 = Error(SamplerKind.DpmSolverPP2M, 25), ddim25 = Error(SamplerKind.Ddim, 25);
        Assert.True(dpm10 < ddim10 / 2, $"DPM-Solver++ {dpm10} vs DDIM {ddim10} at 10 steps");
        Assert.True(dpm25 < 0.05 && dpm25 < ddim25 / 4, $"DPM-Solver++ {dpm25} vs DDIM {ddim25} at 25 steps");
    }

    /// <summary>A tiny deterministic learned-sigma model: eps = a·x + b·emb(t), v = tanh(x).</summary>
    static Denoiser TinyModel(float a = 0.3f) => (x, t) =>
    {
        var emb = (t.to_type(ScalarType.Float32) / 1000).view(-1, 1, 1, 1);
        return torch.cat([a * x + 0.1f * emb, torch.tanh(x)], 1);
    };

    [Fact]
    public void SameSeedGivesTheSameSamples()
    {
        using var scope = torch.NewDisposeScope();
        var d = new GaussianDiffusion(new DiffusionConfig { TimestepRespacing = "20" });
        var z = torch.randn([2, 4, 4, 4], generator: new Generator(3));
        Tensor Run(SamplerKind kind, long seed, double eta) =>
            Samplers.Sample(d, kind, TinyModel(), z, new Generator((ulong)seed), eta: eta);
        foreach (var (kind, eta) in new[] { (SamplerKind.Ddpm, 0.0), (SamplerKind.Ddim, 0.5) })
        {
            var first = Run(kind, 42, eta);
            Assert.True(Same(first, Run(kind, 42, eta)), $"{kind}: same seed, different samples");
            Assert.False(Same(first, Run(kind, 43, eta)), $"{kind}: the seed is ignored");
            Assert.True(first.isfinite().all().item<bool>());
        }
        // DDIM at eta 0 does not depend on the draws at all.
        Assert.True(Same(Run(SamplerKind.Ddim, 1, 0), Run(SamplerKind.Ddim, 2, 0)));
    }

    [Fact]
    public void RecordedNoiseReplaysAGeneratorRun()
    {
        using var scope = torch.NewDisposeScope();
        var d = new GaussianDiffusion(new DiffusionConfig { TimestepRespacing = "10" });
        var z = torch.randn([2, 4, 4, 4], generator: new Generator(8));
        var fromGenerator = d.PSampleLoop(TinyModel(), z, false, new Generator(9));
        var g = new Generator(9);
        var draws = Enumerable.Range(0, 10).Select(_ => torch.randn([2, 4, 4, 4], generator: g)).ToList();
        int k = 0;
        var replayed = d.PSampleLoop(TinyModel(), z, false, shape => draws[k++]);
        Assert.True(Same(fromGenerator, replayed));
        Assert.Equal(10, k);
    }

    /// <summary>Live tensors of this thread (tensors created inside dispose scopes and not yet disposed).</summary>
    static long LiveTensors() => DisposeScopeManager.Statistics.ThreadTotalLiveCount;

    static (long early, long late, long after) LiveTensorsWhileSampling(Action<SamplingStep>? keep = null)
    {
        using var scope = torch.NewDisposeScope();
        var d = new GaussianDiffusion(new DiffusionConfig());
        var z = torch.randn([1, 4, 4, 4], generator: new Generator(1));
        long before = LiveTensors();
        long early = 0, late = 0;
        var result = d.PSampleLoop(TinyModel(), z, false, new Generator(2), s =>
        {
            keep?.Invoke(s);
            if (s.Step == 10) early = LiveTensors();
            if (s.Step == 990) late = LiveTensors();
        });
        result.Dispose();
        return (early, late, LiveTensors() - before);
    }

    [Fact]
    public void MemoryStaysFlatOverAThousandSteps()
    {
        var (early, late, after) = LiveTensorsWhileSampling();
        Assert.Equal(early, late);
        Assert.Equal(0, after);

        // The measurement sees one tensor per step that outlives its step (what a missing per-step scope leaks):
        // here a callback keeps every step's sample in the caller's scope.
        var (lEarly, lLate, lAfter) = LiveTensorsWhileSampling(s => s.Sample.clone().MoveToOuterDisposeScope());
        Assert.Equal(980, lLate - lEarly);
        Assert.Equal(1000, lAfter);
    }

    [Fact]
    public void Bf16ModelOutputIsUsedInFloat32()
    {
        using var scope = torch.NewDisposeScope();
        var d = new GaussianDiffusion(new DiffusionConfig { TimestepRespacing = "10" });
        var g = new Generator(4);
        var x = torch.randn([2, 4, 4, 4], generator: g);
        var t = torch.tensor(new long[] { 3, 9 });
        // The model computes in bf16 (as a bf16 network would) and returns bf16.
        Denoiser bf16Model = (xi, ti) => TinyModel()(xi.to_type(ScalarType.BFloat16), ti);
        Denoiser upcastByHand = (xi, ti) => bf16Model(xi, ti).to_type(ScalarType.Float32);
        var viaBf16 = d.PMeanVariance(bf16Model, x, t, clipDenoised: false);
        var reference = d.PMeanVariance(upcastByHand, x, t, clipDenoised: false);
        foreach (var (a, b) in new[] { (viaBf16.Mean, reference.Mean), (viaBf16.LogVariance, reference.LogVariance), (viaBf16.PredXstart, reference.PredXstart) })
        {
            Assert.Equal(ScalarType.Float32, a.dtype);
            Assert.True(Same(a, b));
        }
        // Had the schedule arithmetic run in bf16, the x_0 prediction would be off by far more than float32 rounding.
        var bf16Arithmetic = (d.Extract(d.SqrtRecipAlphasCumprod, t, x).to_type(ScalarType.BFloat16) * x.to_type(ScalarType.BFloat16)
            - d.Extract(d.SqrtRecipm1AlphasCumprod, t, x).to_type(ScalarType.BFloat16) * bf16Model(x, d.OriginalTimesteps(t)).narrow(1, 0, 4)).to_type(ScalarType.Float32);
        Assert.True((bf16Arithmetic - viaBf16.PredXstart).abs().max().item<float>() > 1e-3f);

        // A bf16 start noise and a bf16 model still sample in float32.
        var samples = d.DdimSampleLoop(bf16Model, x.to_type(ScalarType.BFloat16), false, 0.0, new Generator(1));
        Assert.Equal(ScalarType.Float32, samples.dtype);
        Assert.True(samples.isfinite().all().item<bool>());
    }

    [Fact]
    public void ModelOutputOfTheWrongWidthIsAUserError()
    {
        using var scope = torch.NewDisposeScope();
        var d = new GaussianDiffusion(new DiffusionConfig()); // learned sigma: needs 2C channels
        var x = torch.zeros(1, 4, 4, 4);
        Assert.Throws<LdmException>(() => d.PMeanVariance((xi, ti) => xi * 1, x, torch.zeros(1, dtype: ScalarType.Int64), false));
    }

    // ---------------------------------------------------------------- training

    [Fact]
    public void HybridLossTrainsTheVarianceOnlyThroughVb()
    {
        using var scope = torch.NewDisposeScope();
        var g = new Generator(21);
        var d = new GaussianDiffusion(new DiffusionConfig());
        var x0 = torch.rand([2, 4, 4, 4], generator: g) * 2 - 1;
        var noise = torch.randn([2, 4, 4, 4], generator: g);
        var t = torch.tensor(new long[] { 5, 600 });
        var output = (torch.randn([2, 8, 4, 4], generator: g) * 0.5).requires_grad_();
        Denoiser model = (x, ti) => output * 1;

        var terms = d.TrainingLosses(model, x0, t, noise);
        Assert.Equal([2L], terms.Loss.shape);
        Assert.True(torch.allclose(terms.Loss, terms.Mse! + terms.Vb!));
        // MSE is on ε exactly.
        var expectedMse = (noise - output.detach().narrow(1, 0, 4)).pow(2).mean([1, 2, 3]);
        Assert.True(torch.allclose(terms.Mse!, expectedMse));

        terms.Vb!.sum().backward();
        var grad = output.grad!;
        Assert.Equal(0f, grad.narrow(1, 0, 4).abs().max().item<float>());
        Assert.True(grad.narrow(1, 4, 4).abs().max().item<float>() > 0);
        output.grad!.zero_();
        d.TrainingLosses(model, x0, t, noise).Mse!.sum().backward();
        Assert.Equal(0f, output.grad!.narrow(1, 4, 4).abs().max().item<float>());
        Assert.True(output.grad!.narrow(1, 0, 4).abs().max().item<float>() > 0);
    }

    [Fact]
    public void VbIsZeroWhenThePredictionIsTheTruePosterior()
    {
        using var scope = torch.NewDisposeScope();
        var g = new Generator(22);
        var d = new GaussianDiffusion(new DiffusionConfig());
        var x0 = torch.rand([2, 4, 4, 4], generator: g) * 2 - 1;
        var noise = torch.randn([2, 4, 4, 4], generator: g);
        var t = torch.tensor(new long[] { 10, 400 });
        // ε = the true noise and v = -1 (log variance = clipped posterior log variance): p equals q, KL = 0.
        Denoiser perfect = (x, ti) => torch.cat([noise, torch.full_like(noise, -1f)], 1);
        var terms = d.TrainingLosses(perfect, x0, t, noise);
        Assert.True(terms.Vb!.abs().max().item<float>() < 1e-4);
        Assert.True(terms.Mse!.abs().max().item<float>() == 0);
    }

    [Fact]
    public void TimestepSamplerIsUniformAndSeeded()
    {
        using var scope = torch.NewDisposeScope();
        var sampler = new TimestepSampler(1000);
        var (t1, w) = sampler.Sample(4096, new Generator(7));
        var (t2, _) = sampler.Sample(4096, new Generator(7));
        Assert.True(Same(t1, t2));
        Assert.Equal(ScalarType.Int64, t1.dtype);
        Assert.True(t1.min().item<long>() >= 0 && t1.max().item<long>() <= 999);
        Assert.InRange(t1.to_type(ScalarType.Float64).mean().item<double>(), 470, 530);
        Assert.Equal(4096f, w.sum().item<float>());
    }

    // ---------------------------------------------------------------- guidance

    /// <summary>A label-dependent model over a doubled batch whose labels are [cond; uncond].</summary>
    static Denoiser LabelModel(Tensor y) => (x, t) =>
    {
        var shift = y.to_type(ScalarType.Float32).view(-1, 1, 1, 1) * 0.1f;
        return torch.cat([x * 0.5f + shift, torch.tanh(x) - shift], 1);
    };

    [Fact]
    public void GuidanceMixesOnlyTheGuidedChannels()
    {
        using var scope = torch.NewDisposeScope();
        var cond = torch.randn([2, 8, 3, 3], generator: new Generator(1));
        var uncond = torch.randn([2, 8, 3, 3], generator: new Generator(2));
        var all = ClassifierFreeGuidance.Combine(cond, uncond, 4.0, epsChannels: 4);
        Assert.True(torch.allclose(all.narrow(1, 0, 4), uncond.narrow(1, 0, 4) + 4.0 * (cond.narrow(1, 0, 4) - uncond.narrow(1, 0, 4))));
        Assert.True(Same(all.narrow(1, 4, 4), cond.narrow(1, 4, 4)));
        var three = ClassifierFreeGuidance.Combine(cond, uncond, 4.0, epsChannels: 4, guidedChannels: 3);
        Assert.True(Same(three.narrow(1, 3, 5), cond.narrow(1, 3, 5)));
        Assert.True(torch.allclose(ClassifierFreeGuidance.Combine(cond, uncond, 1.0, 4), cond, 1e-5, 1e-6));
        Assert.Throws<LdmException>(() => ClassifierFreeGuidance.Combine(cond, uncond, 2.0, 4, guidedChannels: 5));
    }

    [Fact]
    public void DoubledBatchGuidanceEqualsTheOfficialFormsConditionalHalf()
    {
        using var scope = torch.NewDisposeScope();
        var d = new GaussianDiffusion(new DiffusionConfig { TimestepRespacing = "10" });
        var z = torch.randn([2, 4, 4, 4], generator: new Generator(6));
        var labels = torch.tensor(new long[] { 1, 6 });
        var yDoubled = torch.cat([labels, torch.full([2], 10L)], 0);

        // Official: the sampler state is [z; z] and every step draws noise for all 4 rows.
        var g1 = new Generator(77);
        var official = d.PSampleLoop(ClassifierFreeGuidance.OfficialDitForm(LabelModel(yDoubled), 4.0, guidedChannels: 4),
            torch.cat([z, z], 0), false, new Generator(77));
        // Ours: state of 2 rows; feed it the first half of each 4-row draw so both see the same noise.
        var officialDraws = new Generator(77);
        var ours = d.PSampleLoop(ClassifierFreeGuidance.OverDoubledBatch(LabelModel(yDoubled), 4.0),
            z, false, shape => torch.randn([4, 4, 4, 4], generator: officialDraws).narrow(0, 0, 2));
        Assert.True(torch.allclose(official.narrow(0, 0, 2), ours, 1e-5, 1e-5));

        // The pair form with separate conditional and unconditional models agrees too.
        var pair = ClassifierFreeGuidance.FromPair(LabelModel(labels), LabelModel(torch.full([2], 10L)), 4.0);
        var x = torch.randn([2, 4, 4, 4], generator: new Generator(3));
        var t = torch.full([2], 500L);
        Assert.True(torch.allclose(pair(x, t), ClassifierFreeGuidance.OverDoubledBatch(LabelModel(yDoubled), 4.0)(x, t)));
    }

    [Fact]
    public void SamplerNamesParse()
    {
        Assert.Equal(SamplerKind.Ddim, Samplers.Parse("DDIM"));
        Assert.Equal(SamplerKind.Ddpm, Samplers.Parse("ddpm"));
        Assert.Equal(SamplerKind.DpmSolverPP2M, Samplers.Parse("dpm++2m"));
        Assert.Throws<LdmException>(() => Samplers.Parse("euler"));
        Assert.Equal(50, Samplers.CreateDiffusion(new DiffusionConfig(), 50).NumTimesteps);
        Assert.Throws<LdmOptionException>(() => Samplers.CreateDiffusion(new DiffusionConfig(), 0));
    }
}
