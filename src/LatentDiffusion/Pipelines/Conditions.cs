using LatentDiffusion.Denoisers;
using LatentDiffusion.Diffusion;
using LatentDiffusion.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Pipelines;

/// <summary>
/// The conditions of one pipeline call — class ids, prompts, or none — checked against the model before any sampling,
/// and bound batch by batch into a <see cref="Denoiser"/>. Classifier-free guidance runs the conditional and the
/// unconditional rows (null class, empty caption) in one doubled batch.
/// </summary>
internal abstract class Conditions : IDisposable
{
    protected Conditions(DiffusionPipeline pipeline, int count)
    {
        if (count < 1) throw new LdmException($"nothing to generate: asked for {count} images; ask for at least one.");
        Pipeline = pipeline;
        Count = count;
    }

    protected DiffusionPipeline Pipeline { get; }
    protected IBackboneConfig Backbone => Pipeline.Info.Backbone;
    protected Device Device => Pipeline.Device;

    /// <summary>Images asked for.</summary>
    public int Count { get; }

    /// <summary>Refuses guidance for a model that never learned an unconditional input.</summary>
    public virtual void CheckGuidance(SamplingOptions options)
    {
        if (options.GuidanceScale != 1.0 && !Backbone.HasUnconditionalInput)
            throw new LdmOptionException(nameof(SamplingOptions), nameof(SamplingOptions.GuidanceScale), options.GuidanceScale, "be 1 for this model",
                Backbone.Text is null ? "it was trained without label dropout, so it has no null class for guidance"
                    : "it was trained without caption dropout, so it never learned the empty caption that guidance needs");
    }

    /// <summary>The denoiser of images first … first+n−1 with guidance as the options ask.</summary>
    public abstract Denoiser Bind(DenoiserNetwork network, int first, int n, SamplingOptions options);

    public virtual void Dispose() { }

    public static Conditions ForClasses(DiffusionPipeline pipeline, IReadOnlyList<int> classIds) => new ClassConditions(pipeline, classIds);
    public static Conditions ForPrompts(DiffusionPipeline pipeline, IReadOnlyList<string> prompts) => new TextConditions(pipeline, prompts);
    public static Conditions Unconditional(DiffusionPipeline pipeline, int count) =>
        pipeline.Info.Backbone.HasUnconditionalInput
            ? pipeline.Condition == ConditionKind.Text ? new TextConditions(pipeline, Enumerable.Repeat("", count).ToList(), unconditional: true)
                : new ClassConditions(pipeline, Enumerable.Repeat(pipeline.Info.Backbone.NumClasses, count).ToList(), unconditional: true)
            : throw new LdmException("this model has no unconditional input (it was trained without label or caption dropout); generate from class ids or prompts.");

    sealed class ClassConditions : Conditions
    {
        readonly long[] _ids;
        readonly bool _unconditional;

        public ClassConditions(DiffusionPipeline pipeline, IReadOnlyList<int> classIds, bool unconditional = false) : base(pipeline, classIds.Count)
        {
            if (pipeline.Condition != ConditionKind.Class)
                throw new LdmException("this is a text-conditioned model; generate from prompts, not class ids.");
            _unconditional = unconditional;
            if (!unconditional) Check(pipeline.Info, classIds);
            _ids = classIds.Select(c => (long)c).ToArray();
        }

        /// <summary>Refuses a class id outside the model's classes, naming the classes.</summary>
        public static void Check(DenoiserInfo info, IReadOnlyList<int> classIds)
        {
            int n = info.Backbone.NumClasses;
            foreach (var c in classIds)
                if (c < 0 || c >= n)
                    throw new LdmException(n == 0 ? $"class id {c} given, but this model has no classes; generate unconditionally."
                        : $"class id {c} is outside this model's classes 0..{n - 1}; use ids in that range{NamesHint(info)}.");
        }

        static string NamesHint(DenoiserInfo info) => info.ClassNames.Count == 0 ? "" :
            $" ({string.Join(", ", info.ClassNames.Take(12).Select((name, i) => $"{i}={name}"))}{(info.ClassNames.Count > 12 ? ", ..." : "")})";

        public override void CheckGuidance(SamplingOptions options)
        {
            if (!_unconditional) base.CheckGuidance(options);
        }

        public override Denoiser Bind(DenoiserNetwork network, int first, int n, SamplingOptions options)
        {
            var y = torch.tensor(_ids.AsSpan(first, n).ToArray(), device: Device);
            if (_unconditional || options.GuidanceScale == 1.0) return (x, t) => network.forward(x, t, y);
            var yy = torch.cat([y, torch.full(n, Backbone.NumClasses, ScalarType.Int64, device: Device)], 0);
            return ClassifierFreeGuidance.OverDoubledBatch((x, t) => network.forward(x, t, yy), options.GuidanceScale, options.GuidedChannels);
        }
    }

    sealed class TextConditions : Conditions
    {
        readonly TokenBatch _tokens;
        readonly bool _unconditional;
        readonly int _maxTokens, _padId;

        public TextConditions(DiffusionPipeline pipeline, IReadOnlyList<string> prompts, bool unconditional = false) : base(pipeline, prompts.Count)
        {
            if (pipeline.Condition != ConditionKind.Text)
                throw new LdmException("this is a class-conditional model; generate from class ids, not prompts.");
            _unconditional = unconditional;
            var tokenizer = pipeline.Info.TextTokenizer;
            _maxTokens = Backbone.Text!.MaxTokens;
            _padId = tokenizer.PadId;
            // Every prompt is tokenized before sampling starts: unknown words fail at once, with the words listed.
            _tokens = TokenBatch.Encode(tokenizer, prompts, _maxTokens);
        }

        public override void CheckGuidance(SamplingOptions options)
        {
            if (!_unconditional) base.CheckGuidance(options);
        }

        public override Denoiser Bind(DenoiserNetwork network, int first, int n, SamplingOptions options)
        {
            var ids = _tokens.Ids.narrow(0, first, n).to(Device);
            var mask = _tokens.Mask.narrow(0, first, n).to(Device);
            if (_unconditional || options.GuidanceScale == 1.0) return (x, t) => network.ForwardText(x, t, ids, mask);
            using var empty = TokenBatch.Empty(n, _maxTokens, _padId);
            var both = new TokenBatch(torch.cat([ids, empty.Ids.to(Device)], 0), torch.cat([mask, empty.Mask.to(Device)], 0));
            return ClassifierFreeGuidance.OverDoubledBatch((x, t) => network.ForwardText(x, t, both.Ids, both.Mask),
                options.GuidanceScale, options.GuidedChannels);
        }

        public override void Dispose() => _tokens.Dispose();
    }
}
