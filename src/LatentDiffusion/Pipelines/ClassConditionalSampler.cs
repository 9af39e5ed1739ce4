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
        if (info.Transformer.IsTextConditional)
            throw new LdmException("this is a text-conditioned model; sample it with prompts (TextConditionalSampler, or --prompt on the command line).");
        _diffusionConfig = SamplingLoop.DiffusionConfigOf(info);
    }

    /// <summary>Checks class ids against the model; throws a user error naming the first bad one.</summary>
    public void CheckClasses(IReadOnlyList<int> classIds) => CheckClasses(_info, classIds);

    /// <summary>Checks class ids against a checkpoint's model (before loading its weights).</summary>
    public static void CheckClasses(DenoiserInfo info, IReadOnlyList<int> classIds)
    {
        int n = info.Transformer.NumClasses;
        foreach (var c in classIds)
            if (c < 0 || c >= n)
                throw new LdmException($"class id {c} is outside this model's classes 0..{n - 1}; pass ids in that range{NamesHint(info)}.");
    }

    static string NamesHint(DenoiserInfo info) => info.ClassNames.Count == 0 ? "" :
        $" ({string.Join(", ", info.ClassNames.Take(12).Select((name, i) => $"{i}={name}"))}{(info.ClassNames.Count > 12 ? ", ..." : "")})";

    /// <param name="onStep">Called after each reverse step with (images done so far, step, steps per batch).</param>
    public Tensor Sample(IReadOnlyList<int> classIds, SamplingOptions options, Action<int, int, int>? onStep = null)
    {
        var batches = new List<Tensor>();
        try
        {
            foreach (var batch in SampleBatches(classIds, options, onStep)) batches.Add(batch);
            return torch.cat(batches, 0);
        }
        finally { foreach (var b in batches) b.Dispose(); }
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

        return SamplingLoop.RunBatches(_model, cfg, diffusion, classIds.Count, options, clip, onStep, (model, start, n) =>
        {
            var y = torch.tensor(classIds.Skip(start).Take(n).Select(c => (long)c).ToArray());
            if (!guided) return (x, t) => model.forward(x, t, y);
            var yy = torch.cat([y, torch.full(n, cfg.NullClass, ScalarType.Int64)], 0);
            return ClassifierFreeGuidance.OverDoubledBatch((x, t) => model.forward(x, t, yy), options.GuidanceScale, options.GuidedChannels);
        });
    }
}
