using System.Globalization;
using LatentDiffusion.Denoisers;
using LatentDiffusion.Diffusion;

namespace LatentDiffusion.Pipelines;

/// <summary>
/// What <c>ldm sample</c> is asked for, in the tool's terms: class ids or prompts (cycled to fill <see cref="Count"/>),
/// and the sampling settings given (unset ones come from the model's recommended sampling). <see cref="Resolve"/> is
/// the one validation of such a request, so the command line and the web server refuse the same input with the same
/// one-line message; <see cref="CommandLine"/> is the <c>ldm sample</c> command that makes the same images.
/// </summary>
public sealed record SampleRequest
{
    /// <summary>Images the tool makes by default: 4 per listed class or prompt, at most this many.</summary>
    public const int DefaultMaxCount = 64;

    /// <summary>Class models: the class ids to draw (null: every class).</summary>
    public IReadOnlyList<int>? ClassIds { get; init; }
    /// <summary>Text models: the captions to draw.</summary>
    public IReadOnlyList<string>? Prompts { get; init; }
    /// <summary>Images in all (null: 4 per class or prompt, at most <see cref="DefaultMaxCount"/>).</summary>
    public int? Count { get; init; }
    /// <summary>The sampler (null: the model's recommended).</summary>
    public SamplerKind? Sampler { get; init; }
    /// <summary>Reverse steps (null: the model's recommended).</summary>
    public int? Steps { get; init; }
    /// <summary>Classifier-free guidance scale (null: the model's recommended).</summary>
    public double? GuidanceScale { get; init; }
    /// <summary>DDIM eta (0 = deterministic).</summary>
    public double Eta { get; init; }
    /// <summary>Seed of the noise.</summary>
    public long Seed { get; init; }
    /// <summary>Images per model batch.</summary>
    public int BatchSize { get; init; } = 32;

    /// <summary>Checks this request against a model and fills in what was left out; throws <see cref="LdmException"/>
    /// naming the first problem in the command line's words.</summary>
    public ResolvedSample Resolve(DenoiserInfo info)
    {
        bool text = info.Condition == ConditionKind.Text;
        var prompts = Prompts ?? [];
        foreach (var p in prompts)
            if (string.IsNullOrWhiteSpace(p))
                throw new LdmException("--prompt is empty; describe the image (the empty caption is the unconditional input, use --guidance 0 for unconditional samples).");
        if (text)
        {
            if (ClassIds != null)
                throw new LdmException("this is a text-conditioned model; describe the images with --prompt \"...\" instead of --classes.");
            if (prompts.Count == 0)
                throw new LdmException("this is a text-conditioned model; give at least one --prompt \"...\" (or --prompts-file).");
        }
        else if (prompts.Count > 0)
            throw new LdmException("this is a class-conditional model; choose classes with --classes instead of --prompt.");
        // Unknown words and over-long prompts fail here, before a model is loaded or a queue slot taken.
        if (text)
            foreach (var p in prompts) info.TextTokenizer.Encode(p.Trim(), info.Backbone.Text!.MaxTokens);
        if (!text && ClassIds is { Count: 0 })
            throw new LdmException("--classes is empty; write ids like 3, 0,5,7 or 0-11, or 'all'.");
        var ids = text ? Enumerable.Range(0, prompts.Count).ToList() : (ClassIds ?? Enumerable.Range(0, info.Backbone.NumClasses)).ToList();
        // Every listed id, not only those the count happens to use: a typo in the classes is an error either way.
        foreach (var id in text ? [] : ids)
            if (id < 0 || id >= info.Backbone.NumClasses)
                throw new LdmException($"--classes: class id {id} is outside this model's classes 0..{info.Backbone.NumClasses - 1}; use ids in that range.");
        int count = Count ?? Math.Min(DefaultMaxCount, ids.Count * 4);
        if (count < 1) throw new LdmException($"--num must be at least 1, got {count}.");
        // Images of one class or prompt stay together, in the order listed.
        var labels = Enumerable.Range(0, count).Select(i => ids[i % ids.Count]).OrderBy(c => ids.IndexOf(c)).ToList();
        // Settings not given come from the model's recommended sampling (stored in its checkpoint).
        var given = info.SamplingOrDefault.With(Sampler, Steps, GuidanceScale);
        var options = SamplingOptions.From(given) with { Eta = Eta, Seed = Seed, BatchSize = BatchSize };
        options.Validate();
        return new ResolvedSample(this, options, text ? null : labels, text ? labels.Select(i => prompts[i].Trim()).ToList() : null);
    }

    /// <summary>The <c>ldm sample</c> command that makes the images of <paramref name="resolved"/> from the model file
    /// <paramref name="modelPath"/> (every setting spelled out, so a later change of the model's recommended settings
    /// does not change it), quoted for a POSIX shell.</summary>
    public static string CommandLine(string modelPath, ResolvedSample resolved, string? outFolder = null)
    {
        var o = resolved.Options;
        var args = new List<string> { "ldm", "sample", "--model", ShellQuote(modelPath) };
        var request = resolved.Request;
        if (resolved.Prompts is not null)
            foreach (var p in request.Prompts!) args.AddRange(["--prompt", ShellQuote(p.Trim())]);
        else if (request.ClassIds is { } ids)
            args.AddRange(["--classes", string.Join(",", ids.Select(i => i.ToString(CultureInfo.InvariantCulture)))]);
        args.AddRange(["--num", Text(resolved.Count), "--sampler", Samplers.Name(o.Sampler), "--steps", Text(o.Steps),
            "--guidance", Text(o.GuidanceScale), "--seed", Text(o.Seed)]);
        if (o.Eta != 0) args.AddRange(["--eta", Text(o.Eta)]);
        if (o.BatchSize != new SampleRequest().BatchSize) args.AddRange(["--batch-size", Text(o.BatchSize)]);
        if (outFolder is not null) args.AddRange(["--out", ShellQuote(outFolder)]);
        return string.Join(" ", args);
    }

    static string Text(double v) => v.ToString("G", CultureInfo.InvariantCulture);
    static string Text(long v) => v.ToString(CultureInfo.InvariantCulture);

    /// <summary>A word a POSIX shell reads back as itself: bare when it is plain, else in single quotes.</summary>
    public static string ShellQuote(string word) =>
        word.Length > 0 && word.All(c => char.IsAsciiLetterOrDigit(c) || "-_./=:,+@%".Contains(c))
            ? word : "'" + word.Replace("'", "'\\''") + "'";
}

/// <summary>A <see cref="SampleRequest"/> checked against a model: the options to sample with and the class id or
/// prompt of every image, in order.</summary>
/// <param name="Request">The request as given.</param>
/// <param name="Options">The sampling options, the model's recommended settings filled in, validated.</param>
/// <param name="Labels">Class models: the class id of each image (else null).</param>
/// <param name="Prompts">Text models: the caption of each image (else null).</param>
public sealed record ResolvedSample(SampleRequest Request, SamplingOptions Options, IReadOnlyList<int>? Labels, IReadOnlyList<string>? Prompts)
{
    /// <summary>Images in all.</summary>
    public int Count => Labels?.Count ?? Prompts!.Count;

    /// <summary>Grid columns that give each class or prompt its own row when the images split evenly into at most 16
    /// per row, else a square.</summary>
    public int GridColumns
    {
        get
        {
            var keys = Prompts is not null ? Prompts.Cast<object>().ToList() : Labels!.Cast<object>().ToList();
            int distinct = keys.Distinct().Count();
            int perKey = keys.Count / Math.Max(1, distinct);
            return distinct > 1 && perKey * distinct == keys.Count && perKey <= 16 ? perKey : (int)Math.Ceiling(Math.Sqrt(keys.Count));
        }
    }

    /// <summary>Runs the request on <paramref name="pipeline"/>.</summary>
    public GeneratedImages Generate(DiffusionPipeline pipeline, Action<GenerationProgress>? onProgress = null, CancellationToken cancellationToken = default) =>
        Prompts is not null ? pipeline.Generate(Prompts, Options, onProgress, cancellationToken)
            : pipeline.Generate(Labels!, Options, onProgress, cancellationToken);

    /// <summary>The settings of image <paramref name="index"/> (or of the whole grid when null) as PNG text entries
    /// (<see cref="IO.PngText"/>): what it shows, the sampling settings, and the command that makes it again.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> PngText(string modelPath, int? index, IReadOnlyList<string>? classNames = null)
    {
        var o = Options;
        var entries = new List<KeyValuePair<string, string>> { new("Software", "ldm (LatentDiffusion)") };
        if (index is int i)
        {
            entries.Add(new("ldm.index", i.ToString(CultureInfo.InvariantCulture)));
            if (Prompts is not null) entries.Add(new("ldm.prompt", Prompts[i]));
            else
            {
                int id = Labels![i];
                entries.Add(new("ldm.class", id.ToString(CultureInfo.InvariantCulture)));
                if (classNames is not null && id < classNames.Count) entries.Add(new("ldm.class_name", classNames[id]));
            }
        }
        entries.Add(new("ldm.model", Path.GetFileName(modelPath)));
        entries.Add(new("ldm.sampler", Samplers.Name(o.Sampler)));
        entries.Add(new("ldm.steps", o.Steps.ToString(CultureInfo.InvariantCulture)));
        entries.Add(new("ldm.guidance", o.GuidanceScale.ToString("G", CultureInfo.InvariantCulture)));
        entries.Add(new("ldm.seed", o.Seed.ToString(CultureInfo.InvariantCulture)));
        entries.Add(new("ldm.eta", o.Eta.ToString("G", CultureInfo.InvariantCulture)));
        entries.Add(new("ldm.command", SampleRequest.CommandLine(modelPath, this)));
        return entries;
    }
}
