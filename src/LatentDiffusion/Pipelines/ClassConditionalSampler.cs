using LatentDiffusion.Diffusion;
using LatentDiffusion.Transformers;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Pipelines;

/// <summary>
/// Class-conditional sampling from a diffusion Transformer: start noise and every per-step draw come from one
/// generator seeded by the options, so the same seed gives the same samples; classifier-free guidance runs the
/// conditional and the null-class rows in one doubled batch. Returns float32 samples in the model's space
/// (pixels in [-1, 1], or scaled latents for the autoencoder to decode).
/// </summary>
public sealed class ClassConditionalSampler
{
    readonly DiffusionTransformer _model;
    readonly DenoiserInfo _info;
    readonly DiffusionConfig _diffusionConfig;

    /// <param name="model">The trained model (float32 or already bf16; it is not modified).</param>
    public ClassConditionalSampler(DiffusionTransformer model, DenoiserInfo info)
    {
        _model = model;
        _info = info;
        _diffusionConfig = info.Diffusion.Count == 0 ? new DiffusionConfig { LearnSigma = info.Transformer.LearnSigma }
            : System.Text.Json.JsonSerializer.Deserialize<DiffusionConfig>(info.Diffusion.ToJsonString())!;
        _diffusionConfig.Validate();
    }

    /// <summary>Checks class ids against the model; throws a user error naming the first bad one.</summary>
    public void CheckClasses(IReadOnlyList<int> classIds)
    {
        int n = _info.Transformer.NumClasses;
        foreach (var c in classIds)
            if (c < 0 || c >= n)
                throw new LdmException($"class id {c} is outside this model's classes 0..{n - 1}; pass ids in that range{NamesHint()}.");
    }

    string NamesHint() => _info.ClassNames.Count == 0 ? "" :
        $" ({string.Join(", ", _info.ClassNames.Take(12).Select((name, i) => $"{i}={name}"))}{(_info.ClassNames.Count > 12 ? ", ..." : "")})";

    /// <param name="onStep">Called after each reverse step with (images done so far, step, steps per batch).</param>
    public Tensor Sample(IReadOnlyList<int> classIds, SamplingOptions options, Action<int, int, int>? onStep = null)
    {
        var results = new List<Tensor>();
        try
        {
            foreach (var batch in SampleBatches(classIds, options, onStep)) results.Add(batch);
            return torch.cat(results, 0);
        }
        finally
        {
            foreach (var r in results) r.Dispose();
        }
    }

    /// <summary>
    /// The same samples as <see cref="Sample"/> (same seed, same batches, same values), produced one model batch at a
    /// time so that large sample sets (evaluation) never sit in memory whole. The caller disposes each batch.
    /// </summary>
    public IEnumerable<Tensor> SampleBatches(IReadOnlyList<int> classIds, SamplingOptions options, Action<int, int, int>? onStep = null)
    {
        options.Validate();
        CheckClasses(classIds);
        return Run(classIds, options, onStep);
    }

    IEnumerable<Tensor> Run(IReadOnlyList<int> classIds, SamplingOptions options, Action<int, int, int>? onStep)
    {
        var cfg = _info.Transformer;
        var diffusion = Samplers.CreateDiffusion(_diffusionConfig, options.Steps);
        bool clip = options.ClipDenoised ?? _info.IsPixelSpace;
        bool guided = options.GuidanceScale != 1.0;
        if (guided && cfg.ClassDropoutProb <= 0)
            throw new LdmException("this model was trained without label dropout, so it has no null class for guidance; sample with --guidance 1.");

        var model = _model;
        bool converted = false;
        if (options.ComputeDtype != _model.ParameterDtype)
        {
            // A bf16 copy for sampling: weights and activations in bf16, the schedule arithmetic in float32/float64.
            model = new DiffusionTransformer(cfg);
            IO.StateDict.Load(model, _model.state_dict(), "the model in memory");
            model.to(options.ComputeDtype);
            converted = true;
        }
        model.eval();
        try
        {
            using var generator = new Generator(0, new Device(DeviceType.CPU));
            generator.manual_seed(options.Seed);
            var shape = new long[] { 0, cfg.InChannels, cfg.InputSize, cfg.InputSize };
            int done = 0;
            for (int start = 0; start < classIds.Count; start += options.BatchSize)
            {
                Tensor samples;
                // no_grad is thread-local state: set it per batch, never across a yield.
                using (torch.no_grad())
                using (var scope = torch.NewDisposeScope())
                {
                    int n = Math.Min(options.BatchSize, classIds.Count - start);
                    var y = torch.tensor(classIds.Skip(start).Take(n).Select(c => (long)c).ToArray());
                    shape[0] = n;
                    var z = torch.randn(shape, generator: generator);
                    Denoiser denoiser;
                    if (guided)
                    {
                        var yy = torch.cat([y, torch.full(n, cfg.NullClass, ScalarType.Int64)], 0);
                        denoiser = ClassifierFreeGuidance.OverDoubledBatch((x, t) => model.forward(x, t, yy), options.GuidanceScale, options.GuidedChannels);
                    }
                    else denoiser = (x, t) => model.forward(x, t, y);
                    int batchDone = done;
                    samples = Samplers.Sample(diffusion, options.Sampler, denoiser, z, generator, options.Eta, clip,
                        s => onStep?.Invoke(batchDone, s.Step, s.TotalSteps)).MoveToOuterDisposeScope();
                    done += n;
                }
                yield return samples;
            }
        }
        finally
        {
            if (converted) model.Dispose();
        }
    }
}
