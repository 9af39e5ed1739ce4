using LatentDiffusion.Diffusion;
using LatentDiffusion.Text;
using LatentDiffusion.Transformers;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Pipelines;

/// <summary>
/// Text-conditional sampling from a diffusion Transformer: one image per prompt in the list, the start noise and every
/// per-step draw from one generator seeded by the options. Classifier-free guidance runs the prompts and the empty
/// caption (the unconditional input) in one doubled batch [prompts; empty]. Every prompt is tokenized before any
/// sampling starts, so a prompt with unknown words fails at once, with the words listed.
/// Returns float32 samples in the model's space (pixels in [-1, 1], or scaled latents).
/// </summary>
public sealed class TextConditionalSampler
{
    readonly DiffusionTransformer _model;
    readonly DenoiserInfo _info;
    readonly DiffusionConfig _diffusionConfig;

    /// <param name="model">The trained text model (float32 or already bf16; it is not modified).</param>
    /// <param name="info">Its info, with the tokenizer (as <see cref="TransformerCheckpoint.Load"/> returns it).</param>
    public TextConditionalSampler(DiffusionTransformer model, DenoiserInfo info)
    {
        if (!info.Transformer.IsTextConditional)
            throw new LdmException("this is a class-conditional model; sample it with class ids (--classes), not prompts.");
        _model = model;
        _info = info.CheckTokenizer("the model");
        _diffusionConfig = SamplingLoop.DiffusionConfigOf(info);
    }

    /// <summary>Tokenizes the prompts with the model's tokenizer; a user error lists unknown words or an over-long prompt.</summary>
    public TokenBatch Tokenize(IReadOnlyList<string> prompts) =>
        TokenBatch.Encode(_info.TextTokenizer, prompts, _info.Transformer.Text!.MaxTokens);

    /// <param name="prompts">One image per entry (repeat a prompt for several images of it); "" is the unconditional prompt.</param>
    /// <param name="onStep">Called after each reverse step with (images done so far, step, steps per batch).</param>
    public Tensor Sample(IReadOnlyList<string> prompts, SamplingOptions options, Action<int, int, int>? onStep = null)
    {
        options.Validate();
        var cfg = _info.Transformer;
        var text = cfg.Text!;
        bool guided = options.GuidanceScale != 1.0;
        if (guided && text.DropoutProb <= 0)
            throw new LdmException("this model was trained without caption dropout, so it never learned the empty caption that guidance needs; sample with --guidance 1.");
        using var tokens = Tokenize(prompts);
        var diffusion = Samplers.CreateDiffusion(_diffusionConfig, options.Steps);
        bool clip = options.ClipDenoised ?? _info.IsPixelSpace;
        int padId = _info.TextTokenizer.PadId;

        return SamplingLoop.Run(_model, cfg, diffusion, prompts.Count, options, clip, onStep, (model, start, n) =>
        {
            var ids = tokens.Ids.narrow(0, start, n);
            var mask = tokens.Mask.narrow(0, start, n);
            if (!guided) return (x, t) => model.ForwardText(x, t, ids, mask);
            var both = new TokenBatch(ids, mask).Concat(TokenBatch.Empty(n, text.MaxTokens, padId));
            return ClassifierFreeGuidance.OverDoubledBatch((x, t) => model.ForwardText(x, t, both.Ids, both.Mask),
                options.GuidanceScale, options.GuidedChannels);
        });
    }
}
