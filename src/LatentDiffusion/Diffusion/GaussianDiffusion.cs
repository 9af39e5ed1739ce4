using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Diffusion;

/// <summary>
/// A Gaussian diffusion process (DDPM, with improved DDPM's learned-range variance and hybrid loss), numerically as
/// DiT's <c>GaussianDiffusion</c>/<c>SpacedDiffusion</c>: schedule terms in float64, gathered per sample and rounded to
/// float32 before they touch float32 tensors. A respaced process (fewer steps) keeps a subset of the original timesteps;
/// its operations take indices into the respaced process, and the model always receives the ORIGINAL timesteps
/// (<see cref="TimestepMap"/>).
/// </summary>
public sealed class GaussianDiffusion
{
    /// <summary>The config the process was built from (respacing included).</summary>
    public DiffusionConfig Config { get; }
    /// <summary>What the model's mean channels predict (from <see cref="DiffusionConfig.PredictXstart"/> and <see cref="DiffusionConfig.PredictV"/>).</summary>
    public ModelMeanType MeanType { get; }
    /// <summary>How the reverse-step variance is chosen (learned range, or fixed small/large).</summary>
    public ModelVarianceType VarianceType { get; }
    /// <summary>The training objective <see cref="TrainingLosses"/> computes.</summary>
    public DiffusionLossType LossType { get; }

    /// <summary>Steps of this (possibly respaced) process.</summary>
    public int NumTimesteps { get; }
    /// <summary>Steps of the original process the model was trained on.</summary>
    public int OriginalNumTimesteps { get; }
    /// <summary>Original timestep of each index of this process (identity when not respaced).</summary>
    public long[] TimestepMap { get; }

    // Schedule terms, float64, one value per step of this process.
    /// <summary>β_t, the noise added at each step.</summary>
    public double[] Betas { get; }
    /// <summary>ᾱ_t = Π_{s≤t} (1 − β_s).</summary>
    public double[] AlphasCumprod { get; }
    /// <summary>ᾱ_{t−1} (1 at t = 0).</summary>
    public double[] AlphasCumprodPrev { get; }
    /// <summary>ᾱ_{t+1} (0 at the last step).</summary>
    public double[] AlphasCumprodNext { get; }
    /// <summary>√ᾱ_t, the signal scale of x_t.</summary>
    public double[] SqrtAlphasCumprod { get; }
    /// <summary>√(1 − ᾱ_t), the noise scale of x_t.</summary>
    public double[] SqrtOneMinusAlphasCumprod { get; }
    /// <summary>log(1 − ᾱ_t).</summary>
    public double[] LogOneMinusAlphasCumprod { get; }
    /// <summary>√(1/ᾱ_t).</summary>
    public double[] SqrtRecipAlphasCumprod { get; }
    /// <summary>√(1/ᾱ_t − 1).</summary>
    public double[] SqrtRecipm1AlphasCumprod { get; }
    /// <summary>β̃_t = β_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t), the variance of q(x_{t−1} | x_t, x_0).</summary>
    public double[] PosteriorVariance { get; }
    /// <summary>log β̃_t with the 0 at t = 0 replaced by β̃_1 (log of 0 is unusable).</summary>
    public double[] PosteriorLogVarianceClipped { get; }
    /// <summary>Coefficient of x_0 in the posterior mean: β_t √ᾱ_{t−1} / (1 − ᾱ_t).</summary>
    public double[] PosteriorMeanCoef1 { get; }
    /// <summary>Coefficient of x_t in the posterior mean: (1 − ᾱ_{t−1}) √(1 − β_t) / (1 − ᾱ_t).</summary>
    public double[] PosteriorMeanCoef2 { get; }

    readonly double[] _logBetas;
    readonly double[] _fixedLargeVariance, _fixedLargeLogVariance;

    /// <summary>Builds the process <c>create_diffusion</c> would build from these arguments (respacing included).</summary>
    public GaussianDiffusion(DiffusionConfig config)
        : this(config, RespacedBetas(config, out var map), map)
    {
    }

    GaussianDiffusion(DiffusionConfig config, double[] betas, long[] timestepMap)
    {
        Config = config;
        MeanType = config.PredictV ? ModelMeanType.Velocity : config.PredictXstart ? ModelMeanType.StartX : ModelMeanType.Epsilon;
        VarianceType = config.LearnSigma ? ModelVarianceType.LearnedRange
            : config.SigmaSmall ? ModelVarianceType.FixedSmall : ModelVarianceType.FixedLarge;
        LossType = config.UseKl ? DiffusionLossType.RescaledKl
            : config.RescaleLearnedSigmas ? DiffusionLossType.RescaledMse : DiffusionLossType.Mse;
        OriginalNumTimesteps = config.Steps;
        TimestepMap = timestepMap;

        if (betas.Any(b => !(b > 0 && b <= 1)))
            throw new LdmException("the noise schedule has a beta outside (0, 1]; use a named schedule (linear, cosine, scaled-linear) with at least 2 steps.");
        int n = betas.Length;
        NumTimesteps = n;
        Betas = betas;
        AlphasCumprod = new double[n];
        double acc = 1;
        for (int i = 0; i < n; i++) { acc *= 1.0 - betas[i]; AlphasCumprod[i] = acc; }
        AlphasCumprodPrev = [1.0, .. AlphasCumprod[..^1]];
        AlphasCumprodNext = [.. AlphasCumprod[1..], 0.0];
        SqrtAlphasCumprod = AlphasCumprod.Select(a => Math.Sqrt(a)).ToArray();
        SqrtOneMinusAlphasCumprod = AlphasCumprod.Select(a => Math.Sqrt(1.0 - a)).ToArray();
        LogOneMinusAlphasCumprod = AlphasCumprod.Select(a => Math.Log(1.0 - a)).ToArray();
        SqrtRecipAlphasCumprod = AlphasCumprod.Select(a => Math.Sqrt(1.0 / a)).ToArray();
        SqrtRecipm1AlphasCumprod = AlphasCumprod.Select(a => Math.Sqrt(1.0 / a - 1)).ToArray();
        PosteriorVariance = new double[n];
        PosteriorMeanCoef1 = new double[n];
        PosteriorMeanCoef2 = new double[n];
        for (int i = 0; i < n; i++)
        {
            PosteriorVariance[i] = betas[i] * (1.0 - AlphasCumprodPrev[i]) / (1.0 - AlphasCumprod[i]);
            PosteriorMeanCoef1[i] = betas[i] * Math.Sqrt(AlphasCumprodPrev[i]) / (1.0 - AlphasCumprod[i]);
            PosteriorMeanCoef2[i] = (1.0 - AlphasCumprodPrev[i]) * Math.Sqrt(1.0 - betas[i]) / (1.0 - AlphasCumprod[i]);
        }
        // With a single step there is no β̃_1 to borrow; β_0 (the fixed-large choice) keeps the log finite.
        PosteriorLogVarianceClipped = n > 1
            ? PosteriorVariance.Select((v, i) => Math.Log(i == 0 ? PosteriorVariance[1] : v)).ToArray()
            : [Math.Log(betas[0])];
        _logBetas = betas.Select(b => Math.Log(b)).ToArray();
        _fixedLargeVariance = n > 1 ? betas.Select((b, i) => i == 0 ? PosteriorVariance[1] : b).ToArray() : [betas[0]];
        _fixedLargeLogVariance = _fixedLargeVariance.Select(v => Math.Log(v)).ToArray();
    }

    static double[] RespacedBetas(DiffusionConfig config, out long[] timestepMap)
    {
        config.Validate();
        var baseBetas = config.Betas();
        timestepMap = TimestepRespacing.KeptTimesteps(config.TimestepRespacing, config.Steps);
        // Keep ᾱ at the kept timesteps: β'_i = 1 − ᾱ[t_i] / ᾱ[t_{i−1}].
        var kept = timestepMap.ToHashSet();
        var betas = new List<double>();
        double acc = 1, last = 1;
        for (int i = 0; i < baseBetas.Length; i++)
        {
            acc *= 1.0 - baseBetas[i];
            if (!kept.Contains(i)) continue;
            betas.Add(1 - acc / last);
            last = acc;
        }
        return betas.ToArray();
    }

    // ----------------------------------------------------------------------------------------------------------------
    // Forward process

    /// <summary>Samples q(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I) with the given noise.</summary>
    public Tensor QSample(Tensor xStart, Tensor t, Tensor noise)
    {
        CheckSameShape(xStart, noise, "noise");
        using var scope = torch.NewDisposeScope();
        var x0 = Upcast(xStart);
        return (Extract(SqrtAlphasCumprod, t, x0) * x0 + Extract(SqrtOneMinusAlphasCumprod, t, x0) * noise.to_type(x0.dtype))
            .MoveToOuterDisposeScope();
    }

    /// <summary>The posterior q(x_{t−1} | x_t, x_0).</summary>
    public PosteriorDistribution QPosteriorMeanVariance(Tensor xStart, Tensor xT, Tensor t)
    {
        CheckSameShape(xT, xStart, "x_start");
        using var scope = torch.NewDisposeScope();
        var mean = Extract(PosteriorMeanCoef1, t, xT) * xStart + Extract(PosteriorMeanCoef2, t, xT) * xT;
        var variance = Extract(PosteriorVariance, t, xT).expand(xT.shape);
        var logVar = Extract(PosteriorLogVarianceClipped, t, xT).expand(xT.shape);
        return new PosteriorDistribution(mean.MoveToOuterDisposeScope(), variance.MoveToOuterDisposeScope(), logVar.MoveToOuterDisposeScope());
    }

    /// <summary>x_0 = √(1/ᾱ_t)·x_t − √(1/ᾱ_t − 1)·ε.</summary>
    public Tensor PredictXstartFromEps(Tensor xT, Tensor t, Tensor eps) =>
        Extract(SqrtRecipAlphasCumprod, t, xT) * xT - Extract(SqrtRecipm1AlphasCumprod, t, xT) * eps;

    /// <summary>x_0 = √ᾱ_t·x_t − √(1−ᾱ_t)·v.</summary>
    public Tensor PredictXstartFromV(Tensor xT, Tensor t, Tensor v) =>
        Extract(SqrtAlphasCumprod, t, xT) * xT - Extract(SqrtOneMinusAlphasCumprod, t, xT) * v;

    /// <summary>The velocity target v = √ᾱ_t·ε − √(1−ᾱ_t)·x_0.</summary>
    public Tensor Velocity(Tensor xStart, Tensor t, Tensor noise) =>
        Extract(SqrtAlphasCumprod, t, xStart) * noise - Extract(SqrtOneMinusAlphasCumprod, t, xStart) * xStart;

    /// <summary>ε = (√(1/ᾱ_t)·x_t − x_0) / √(1/ᾱ_t − 1), the noise implied by an x_0 prediction.</summary>
    public Tensor PredictEpsFromXstart(Tensor xT, Tensor t, Tensor predXstart) =>
        (Extract(SqrtRecipAlphasCumprod, t, xT) * xT - predXstart) / Extract(SqrtRecipm1AlphasCumprod, t, xT);

    // ----------------------------------------------------------------------------------------------------------------
    // Reverse process

    /// <summary>Original timesteps for indices of this process (what the model receives).</summary>
    public Tensor OriginalTimesteps(Tensor t)
    {
        using var idx = Indices(t);
        using var map = torch.tensor(TimestepMap, dtype: ScalarType.Int64, device: t.device);
        return map.index_select(0, idx);
    }

    /// <summary>Runs the model at indices t (mapped to original timesteps) and returns its output in x's precision.</summary>
    public Tensor RunModel(Denoiser model, Tensor x, Tensor t)
    {
        using var scope = torch.NewDisposeScope();
        var output = model(x, OriginalTimesteps(t));
        // A bf16/fp16 model: the schedule arithmetic must not happen in reduced precision.
        if (output.dtype != x.dtype) output = output.to_type(x.dtype);
        return output.MoveToOuterDisposeScope();
    }

    /// <summary>p(x_{t−1} | x_t) and the x_0 prediction from the model at x_t.</summary>
    /// <param name="model">The denoiser.</param>
    /// <param name="x">x_t.</param>
    /// <param name="t">Indices (N,) into this process.</param>
    /// <param name="clipDenoised">Clamp the x_0 prediction to [-1, 1] (pixel-space models; DiT samples latents without).</param>
    public PredictedDistribution PMeanVariance(Denoiser model, Tensor x, Tensor t, bool clipDenoised)
    {
        using var scope = torch.NewDisposeScope();
        x = Upcast(x);
        var output = RunModel(model, x, t);
        var d = PMeanVarianceFromOutput(output, x, t, clipDenoised);
        return new PredictedDistribution(d.Mean.MoveToOuterDisposeScope(), d.Variance.MoveToOuterDisposeScope(),
            d.LogVariance.MoveToOuterDisposeScope(), d.PredXstart.MoveToOuterDisposeScope());
    }

    /// <summary><see cref="PMeanVariance"/> from a model output already computed (x's precision).</summary>
    public PredictedDistribution PMeanVarianceFromOutput(Tensor modelOutput, Tensor x, Tensor t, bool clipDenoised)
    {
        long n = x.shape[0], c = x.shape[1];
        if (t.shape.Length != 1 || t.shape[0] != n)
            throw new ArgumentException($"t must have shape [{n}], got [{string.Join(",", t.shape)}]");
        Tensor meanPart, variance, logVariance;
        if (VarianceType == ModelVarianceType.LearnedRange)
        {
            CheckOutputChannels(modelOutput, x, 2 * c);
            var parts = modelOutput.split(c, 1);
            meanPart = parts[0];
            var minLog = Extract(PosteriorLogVarianceClipped, t, x);
            var maxLog = Extract(_logBetas, t, x);
            // v ∈ [-1, 1] maps to [min_var, max_var] in log space.
            var frac = (parts[1] + 1) / 2;
            logVariance = frac * maxLog + (1 - frac) * minLog;
            variance = logVariance.exp();
        }
        else
        {
            CheckOutputChannels(modelOutput, x, c);
            meanPart = modelOutput;
            bool large = VarianceType == ModelVarianceType.FixedLarge;
            variance = Extract(large ? _fixedLargeVariance : PosteriorVariance, t, x).expand(x.shape);
            logVariance = Extract(large ? _fixedLargeLogVariance : PosteriorLogVarianceClipped, t, x).expand(x.shape);
        }
        var predXstart = MeanType switch
        {
            ModelMeanType.StartX => meanPart,
            ModelMeanType.Velocity => PredictXstartFromV(x, t, meanPart),
            _ => PredictXstartFromEps(x, t, meanPart),
        };
        if (clipDenoised) predXstart = predXstart.clamp(-1, 1);
        var mean = Extract(PosteriorMeanCoef1, t, x) * predXstart + Extract(PosteriorMeanCoef2, t, x) * x;
        return new PredictedDistribution(mean, variance, logVariance, predXstart);
    }

    /// <summary>One ancestral (DDPM) step x_t → x_{t−1} = mean + σ·noise (no noise where t = 0).</summary>
    public SampleStep PSample(Denoiser model, Tensor x, Tensor t, bool clipDenoised, Tensor noise)
    {
        CheckSameShape(x, noise, "noise");
        using var scope = torch.NewDisposeScope();
        x = Upcast(x);
        var d = PMeanVariance(model, x, t, clipDenoised);
        var sample = d.Mean + NonzeroMask(t, x) * (0.5 * d.LogVariance).exp() * noise.to_type(x.dtype);
        return new SampleStep(sample.MoveToOuterDisposeScope(), d.PredXstart.MoveToOuterDisposeScope());
    }

    /// <summary>One DDIM step (eq. 12 of Song et al.); eta = 0 is deterministic, eta = 1 matches DDPM's variance.</summary>
    public SampleStep DdimSample(Denoiser model, Tensor x, Tensor t, bool clipDenoised, double eta, Tensor noise)
    {
        CheckSameShape(x, noise, "noise");
        if (eta < 0) throw new LdmException($"DDIM eta must be >= 0, got {eta}; use 0 for deterministic sampling.");
        using var scope = torch.NewDisposeScope();
        x = Upcast(x);
        var d = PMeanVariance(model, x, t, clipDenoised);
        // Re-derive ε from the (possibly clipped) x_0 prediction, as the reference does.
        var eps = PredictEpsFromXstart(x, t, d.PredXstart);
        var alphaBar = Extract(AlphasCumprod, t, x);
        var alphaBarPrev = Extract(AlphasCumprodPrev, t, x);
        var sigma = eta * ((1 - alphaBarPrev) / (1 - alphaBar)).sqrt() * (1 - alphaBar / alphaBarPrev).sqrt();
        var meanPred = d.PredXstart * alphaBarPrev.sqrt() + (1 - alphaBarPrev - sigma.pow(2)).sqrt() * eps;
        var sample = meanPred + NonzeroMask(t, x) * sigma * noise.to_type(x.dtype);
        return new SampleStep(sample.MoveToOuterDisposeScope(), d.PredXstart.MoveToOuterDisposeScope());
    }

    /// <summary>One deterministic DDIM step forward in time, x_t → x_{t+1} (inversion).</summary>
    public SampleStep DdimReverseSample(Denoiser model, Tensor x, Tensor t, bool clipDenoised)
    {
        using var scope = torch.NewDisposeScope();
        x = Upcast(x);
        var d = PMeanVariance(model, x, t, clipDenoised);
        var eps = PredictEpsFromXstart(x, t, d.PredXstart);
        var alphaBarNext = Extract(AlphasCumprodNext, t, x);
        var sample = d.PredXstart * alphaBarNext.sqrt() + (1 - alphaBarNext).sqrt() * eps;
        return new SampleStep(sample.MoveToOuterDisposeScope(), d.PredXstart.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Ancestral sampling from the start noise z over every step of this process (T−1 down to 0).
    /// <paramref name="noise"/> gives the draw of each step (called once per step with x's shape, in loop order).
    /// </summary>
    public Tensor PSampleLoop(Denoiser model, Tensor z, bool clipDenoised, Func<long[], Tensor> noise, Action<SamplingStep>? onStep = null) =>
        RunLoop(z, noise, onStep, (x, t, n) => PSample(model, x, t, clipDenoised, n));

    /// <summary><see cref="PSampleLoop(Denoiser, Tensor, bool, Func{long[], Tensor}, Action{SamplingStep}?)"/> with draws from a generator.</summary>
    public Tensor PSampleLoop(Denoiser model, Tensor z, bool clipDenoised, Generator generator, Action<SamplingStep>? onStep = null) =>
        PSampleLoop(model, z, clipDenoised, NoiseFrom(generator, z), onStep);

    /// <summary>DDIM sampling from z over every step of this process. A draw is taken each step even at eta = 0, so
    /// the generator advances exactly as in the reference.</summary>
    public Tensor DdimSampleLoop(Denoiser model, Tensor z, bool clipDenoised, double eta, Func<long[], Tensor> noise, Action<SamplingStep>? onStep = null) =>
        RunLoop(z, noise, onStep, (x, t, n) => DdimSample(model, x, t, clipDenoised, eta, n));

    /// <summary><see cref="DdimSampleLoop(Denoiser, Tensor, bool, double, Func{long[], Tensor}, Action{SamplingStep}?)"/> with draws from a generator.</summary>
    public Tensor DdimSampleLoop(Denoiser model, Tensor z, bool clipDenoised, double eta, Generator generator, Action<SamplingStep>? onStep = null) =>
        DdimSampleLoop(model, z, clipDenoised, eta, NoiseFrom(generator, z), onStep);

    /// <summary>Standard normal draws of a given shape from a CPU generator, moved to z's device, as the loops' noise
    /// source (the same seed gives the same noise on every device, docs/devices.md).</summary>
    public static Func<long[], Tensor> NoiseFrom(Generator generator, Tensor like)
    {
        var device = like.device;
        return shape => torch.randn(shape, dtype: ScalarType.Float32, device: torch.CPU, generator: generator).to(device);
    }

    Tensor RunLoop(Tensor z, Func<long[], Tensor> noise, Action<SamplingStep>? onStep, Func<Tensor, Tensor, Tensor, SampleStep> step)
    {
        using var noGrad = torch.no_grad();
        // No scope around the loop itself: each step's scope has the caller's scope as its outer one, so the new
        // sample (and whatever a callback keeps with MoveToOuterDisposeScope) lands there; the previous sample is
        // disposed explicitly, so only one sample is alive at a time.
        var x = Upcast(z);
        long n = x.shape[0];
        for (int i = NumTimesteps - 1, k = 0; i >= 0; i--, k++)
        {
            using var stepScope = torch.NewDisposeScope();
            var t = torch.full([n], i, dtype: ScalarType.Int64, device: x.device);
            var draw = noise(x.shape);
            var result = step(x, t, draw);
            onStep?.Invoke(new SamplingStep(k, NumTimesteps, i, TimestepMap[i], result.Sample, result.PredXstart));
            var next = result.Sample.MoveToOuterDisposeScope();
            if (!ReferenceEquals(x, z)) x.Dispose();
            x = next;
        }
        return x;
    }

    // ----------------------------------------------------------------------------------------------------------------
    // Training

    /// <summary>
    /// Per-sample training terms at indices t for x_0 noised with the given noise: MSE on the model's ε (or x_0)
    /// prediction and, with a learned variance, the VB term in bits/dim computed on a detached mean so it trains only
    /// the variance (improved DDPM's hybrid loss, as DiT trains). Take <c>Loss.mean()</c> for the batch loss.
    /// </summary>
    public DiffusionLosses TrainingLosses(Denoiser model, Tensor xStart, Tensor t, Tensor noise)
    {
        CheckSameShape(xStart, noise, "noise");
        using var scope = torch.NewDisposeScope();
        var x0 = Upcast(xStart);
        noise = noise.to_type(x0.dtype);
        var xT = QSample(x0, t, noise);
        var output = RunModel(model, xT, t);
        if (LossType is DiffusionLossType.Kl or DiffusionLossType.RescaledKl)
        {
            var loss = VbTermsBpd(output, x0, xT, t, clipDenoised: false);
            if (LossType == DiffusionLossType.RescaledKl) loss = loss * NumTimesteps;
            return new DiffusionLosses(loss.MoveToOuterDisposeScope(), null, null);
        }
        long c = x0.shape[1];
        Tensor meanPart = output;
        Tensor? vb = null;
        if (VarianceType == ModelVarianceType.LearnedRange)
        {
            CheckOutputChannels(output, x0, 2 * c);
            var parts = output.split(c, 1);
            meanPart = parts[0];
            // The VB term may only move the variance: the mean half is cut from the graph.
            var frozen = torch.cat([parts[0].detach(), parts[1]], 1);
            vb = VbTermsBpd(frozen, x0, xT, t, clipDenoised: false);
            // Without the 1/1000 the VB term would dominate the MSE (reference comment).
            if (LossType == DiffusionLossType.RescaledMse) vb = vb * (NumTimesteps / 1000.0);
        }
        else CheckOutputChannels(output, x0, c);
        var target = MeanType switch
        {
            ModelMeanType.StartX => x0,
            ModelMeanType.Velocity => Velocity(x0, t, noise),
            _ => noise,
        };
        var mse = MeanFlat((target - meanPart).pow(2));
        var total = vb is null ? mse : mse + vb;
        return new DiffusionLosses(total.MoveToOuterDisposeScope(), mse.MoveToOuterDisposeScope(), vb?.MoveToOuterDisposeScope());
    }

    /// <summary>One term of the variational bound in bits/dim: KL(q(x_{t−1}|x_t,x_0) ‖ p(x_{t−1}|x_t)), or the
    /// discretized decoder NLL of x_0 where t = 0.</summary>
    public Tensor VbTermsBpd(Tensor modelOutput, Tensor xStart, Tensor xT, Tensor t, bool clipDenoised)
    {
        using var scope = torch.NewDisposeScope();
        var truth = QPosteriorMeanVariance(xStart, xT, t);
        var p = PMeanVarianceFromOutput(modelOutput, xT, t, clipDenoised);
        var kl = MeanFlat(GaussianLikelihood.NormalKl(truth.Mean, truth.LogVarianceClipped, p.Mean, p.LogVariance)) / Math.Log(2.0);
        var nll = MeanFlat(-GaussianLikelihood.DiscretizedGaussianLogLikelihood(xStart, p.Mean, 0.5 * p.LogVariance)) / Math.Log(2.0);
        return torch.where(t.to(xT.device) == 0, nll, kl).MoveToOuterDisposeScope();
    }

    // ----------------------------------------------------------------------------------------------------------------
    // Helpers

    /// <summary>Gathers arr[t] per sample as an (N, 1, ..., 1) tensor on like's device: float32 (rounded from float64,
    /// as the reference) for float32 x, float64 for float64 x. The gather runs on the device, so t is never copied
    /// to the host.</summary>
    internal Tensor Extract(double[] arr, Tensor t, Tensor like)
    {
        using var idx = Indices(t, like.device);
        var shape = new long[like.dim()];
        Array.Fill(shape, 1L);
        shape[0] = idx.shape[0];
        using var table = like.dtype == ScalarType.Float64
            ? torch.tensor(arr, dtype: ScalarType.Float64, device: like.device)
            : torch.tensor(arr.Select(a => (float)a).ToArray(), dtype: ScalarType.Float32, device: like.device);
        using var gathered = table.index_select(0, idx);
        return gathered.view(shape);
    }

    /// <summary>t as a flat int64 index tensor on <paramref name="device"/> (t's own by default), checked to lie in
    /// [0, NumTimesteps).</summary>
    Tensor Indices(Tensor t, Device? device = null)
    {
        if (t.dtype is not (ScalarType.Int64 or ScalarType.Int32 or ScalarType.Int16 or ScalarType.Int8 or ScalarType.Byte))
            throw new ArgumentException($"timesteps must be an integer tensor, got {t.dtype}");
        var idx = t.to(ScalarType.Int64, device ?? t.device).reshape(-1);
        if (idx.NumberOfElements > 0)
        {
            long min = idx.min().item<long>(), max = idx.max().item<long>();
            long bad = min < 0 ? min : max;
            if (min < 0 || max >= NumTimesteps)
            {
                idx.Dispose();
                throw new ArgumentOutOfRangeException(nameof(t), $"timestep index {bad} is outside [0, {NumTimesteps}) of this process");
            }
        }
        return idx;
    }

    Tensor NonzeroMask(Tensor t, Tensor x)
    {
        var shape = new long[x.dim()];
        Array.Fill(shape, 1L);
        shape[0] = -1;
        return (t.to(x.device) != 0).to_type(x.dtype).view(shape);
    }

    static Tensor MeanFlat(Tensor x) => x.mean(Enumerable.Range(1, (int)x.dim() - 1).Select(i => (long)i).ToArray());

    /// <summary>Schedule arithmetic runs in float32 (or float64 for float64 x), never in a reduced precision.</summary>
    static Tensor Upcast(Tensor x) => x.dtype is ScalarType.Float32 or ScalarType.Float64 ? x : x.to_type(ScalarType.Float32);

    static void CheckSameShape(Tensor x, Tensor other, string name)
    {
        if (!x.shape.SequenceEqual(other.shape))
            throw new ArgumentException($"{name} must have x's shape [{string.Join(",", x.shape)}], got [{string.Join(",", other.shape)}]");
    }

    void CheckOutputChannels(Tensor output, Tensor x, long channels)
    {
        if (output.dim() != x.dim() || output.shape[0] != x.shape[0] || output.shape[1] != channels || !output.shape.Skip(2).SequenceEqual(x.shape.Skip(2)))
            throw new LdmException($"the denoiser returned shape [{string.Join(",", output.shape)}] for input [{string.Join(",", x.shape)}], but this diffusion ({(VarianceType == ModelVarianceType.LearnedRange ? "learned sigma" : "fixed variance")}) needs {channels} channels; make the model's learn_sigma match the diffusion's.");
    }
}
