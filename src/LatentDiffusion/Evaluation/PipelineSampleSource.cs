using LatentDiffusion.Denoisers;
using LatentDiffusion.Diffusion;
using LatentDiffusion.Distributed;
using LatentDiffusion.Pipelines;
using TorchSharp;

namespace LatentDiffusion.Evaluation;

/// <summary>
/// Images generated on demand by a <see cref="DiffusionPipeline"/>, for <see cref="SampleEvaluator"/>: class models get
/// the requested classes cycled (0, 1, …, k−1, 0, 1, …) so that any prefix covers every class evenly and the labels go
/// with the images; text models get the prompts cycled. The images equal those of <see cref="DiffusionPipeline.Generate(IReadOnlyList{int}, SamplingOptions?, Action{GenerationProgress}?, CancellationToken)"/>
/// with the same conditions and options.
/// </summary>
public sealed class PipelineSampleSource : ISampleSource
{
    readonly DiffusionPipeline _pipeline;
    readonly int[]? _labels;
    readonly string[]? _prompts;

    /// <summary>A source that generates <paramref name="count"/> images with <paramref name="pipeline"/> when read.</summary>
    /// <param name="pipeline">The loaded model (denoiser, autoencoder, conditioning).</param>
    /// <param name="options">Sampler, steps, guidance, seed.</param>
    /// <param name="classIds">Class models: the classes to cycle through (null = all of them).</param>
    /// <param name="prompts">Text models: the prompts to cycle through.</param>
    /// <param name="count">Images to generate.</param>
    public PipelineSampleSource(DiffusionPipeline pipeline, int count, SamplingOptions options, IReadOnlyList<int>? classIds = null,
        IReadOnlyList<string>? prompts = null)
    {
        if (count < 1) throw new LdmOptionException(nameof(PipelineSampleSource), "count", count, "be at least 1");
        if (!pipeline.ReturnsImages)
            throw new LdmException($"'{pipeline.Source}' is a latent model loaded without its autoencoder: its samples are latents, not images to evaluate; load it with its autoencoder.");
        options.Validate();
        _pipeline = pipeline;
        Options = options;
        if (pipeline.Condition == ConditionKind.Text)
        {
            if (prompts is null || prompts.Count == 0) throw new LdmException("a text model is evaluated on prompts; give at least one prompt.");
            _prompts = Enumerable.Range(0, count).Select(i => prompts[i % prompts.Count]).ToArray();
        }
        else
        {
            var ids = classIds ?? Enumerable.Range(0, pipeline.NumClasses).ToList();
            if (ids.Count == 0) throw new LdmException("no classes to sample; give class ids.");
            _labels = Enumerable.Range(0, count).Select(i => ids[i % ids.Count]).ToArray();
            // Fails now, naming the bad id, rather than at the first batch.
            foreach (var id in ids)
                if (id < 0 || id >= pipeline.NumClasses)
                    throw new LdmException($"class id {id} is outside this model's classes 0..{pipeline.NumClasses - 1}; use ids in that range.");
        }
        Description = $"{pipeline.Source} ({Samplers.Name(options.Sampler)}, {options.Steps} steps, guidance {options.GuidanceScale:G}, seed {options.Seed}, {DtypeName(pipeline.Dtype)})";
    }

    /// <summary>The pipeline that generates the images.</summary>
    public DiffusionPipeline Pipeline => _pipeline;
    /// <summary>The sampling settings of the images.</summary>
    public SamplingOptions Options { get; }
    /// <summary>Class id of each image, in generation order (class models), else null.</summary>
    public IReadOnlyList<int>? Labels => _labels;
    /// <summary>Called with the progress of every reverse step.</summary>
    public Action<GenerationProgress>? OnProgress { get; set; }
    /// <summary>The checkpoint and sampling settings (sampler, steps, guidance, seed, dtype).</summary>
    public string Description { get; }
    /// <summary>The number of images to generate.</summary>
    public long? Count => _labels?.Length ?? _prompts!.Length;

    static string DtypeName(torch.ScalarType dtype) => dtype switch
    {
        torch.ScalarType.BFloat16 => "bf16",
        torch.ScalarType.Float16 => "f16",
        _ => "float32",
    };

    /// <summary>The sampler's model batch: a rank's share is made of whole ones, so its images equal a single run's.</summary>
    public int ShardAlignment => Options.BatchSize;

    /// <summary>The images of <paramref name="part"/> (whole model batches), generated alone: the batches before it are
    /// replayed without the network, so each image equals the one <see cref="Batches(int, long?)"/> makes.</summary>
    public IEnumerable<SampleBatch> Batches(int batchSize, Shard part)
    {
        if (batchSize < 1) throw new LdmOptionException(nameof(PipelineSampleSource), nameof(batchSize), batchSize, "be at least 1");
        int end = (int)Math.Min(Count!.Value, part.End);
        if (end <= part.Start) return [];
        var images = new Shard(part.Start, end - part.Start);
        return Split(_labels is not null ? _pipeline.GenerateBatches(_labels[..end], images, Options, OnProgress)
            : _pipeline.GenerateBatches(_prompts![..end], images, Options, OnProgress), batchSize);
    }

    /// <summary>Generates model batch by model batch, handed out in pieces of at most <paramref name="batchSize"/>;
    /// stops once <paramref name="limit"/> images are out (only the first <paramref name="limit"/> conditions are sampled).</summary>
    public IEnumerable<SampleBatch> Batches(int batchSize, long? limit = null)
    {
        if (batchSize < 1) throw new LdmOptionException(nameof(PipelineSampleSource), nameof(batchSize), batchSize, "be at least 1");
        int n = (int)Math.Min(Count!.Value, limit ?? long.MaxValue);
        if (n == 0) yield break;
        var generated = _labels is not null ? _pipeline.GenerateBatches(_labels[..n], Options, OnProgress)
            : _pipeline.GenerateBatches(_prompts![..n], Options, OnProgress);
        foreach (var batch in Split(generated, batchSize)) yield return batch;
    }

    /// <summary>Model batches handed out in pieces of at most <paramref name="batchSize"/>, quantised to uint8.</summary>
    static IEnumerable<SampleBatch> Split(IEnumerable<GeneratedImages> generated, int batchSize)
    {
        foreach (var images in generated)
        {
            using (images)
            {
                long len = images.Count;
                for (long offset = 0; offset < len; offset += batchSize)
                {
                    long part = Math.Min(batchSize, len - offset);
                    using var slice = images.Images.narrow(0, offset, part);
                    using var labels = images.ClassIds is { } ids
                        ? torch.tensor(ids.Skip((int)offset).Take((int)part).Select(c => (long)c).ToArray()) : null;
                    yield return SampleBatch.FromSigned(slice, labels);
                }
            }
        }
    }
}
