using System.Globalization;
using LatentDiffusion.Evaluation;
using LatentDiffusion.Transformers;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Pipelines;

/// <summary>
/// Turns the model's float samples into images in [-1, 1]: the identity for pixel-space models; for latent-space
/// models the autoencoder's decode (latents already divided by the scale factor are the decoder's business).
/// </summary>
public delegate Tensor SampleDecoder(Tensor modelSamples);

/// <summary>
/// Generates class-conditional samples from a diffusion Transformer on demand, as an <see cref="ISampleSource"/> for
/// <see cref="SampleEvaluator"/>: the labels are the requested classes, cycled (0, 1, …, k−1, 0, 1, …) so that any prefix
/// covers every class evenly; images come out quantised to uint8 as they would be saved. The samples equal those of
/// <see cref="ClassConditionalSampler.Sample"/> with the same labels and options (same seed, same model batches).
/// </summary>
public sealed class CheckpointSampleSource : ISampleSource, IDisposable
{
    readonly DiffusionTransformer _model;
    readonly bool _ownsModel;
    readonly SampleDecoder _decode;
    readonly int[] _labels;

    public DenoiserInfo Info { get; }
    public SamplingOptions Options { get; }
    /// <summary>Class id of each sample, in generation order.</summary>
    public IReadOnlyList<int> Labels => _labels;
    /// <summary>Called after every reverse step with (samples finished before this model batch, step, steps per batch).</summary>
    public Action<int, int, int>? OnStep { get; set; }
    public string Description { get; }
    public long? Count => _labels.Length;

    /// <param name="decoder">Required for latent-space models (the autoencoder's decode); must be null or the identity for pixel space.</param>
    public CheckpointSampleSource(DiffusionTransformer model, DenoiserInfo info, IReadOnlyList<int> classIds, int count,
        SamplingOptions options, string description, SampleDecoder? decoder = null, bool ownsModel = false)
    {
        if (count < 1) throw new LdmException($"--num-samples must be at least 1, got {count}.");
        if (classIds.Count == 0) throw new LdmException("no classes to sample; pass --classes ids like 0-9 or all.");
        options.Validate();
        if (!info.IsPixelSpace && decoder is null)
            throw new LdmException($"'{description}' is a latent-space denoiser: its samples must be decoded by its autoencoder before evaluation, and no autoencoder was given; evaluate a pixel-space checkpoint, or decode with `ldm sample` and evaluate the images.");
        _model = model;
        _ownsModel = ownsModel;
        _decode = decoder ?? (x => x);
        _labels = Enumerable.Range(0, count).Select(i => classIds[i % classIds.Count]).ToArray();
        new ClassConditionalSampler(model, info).CheckClasses(classIds);
        if (options.GuidanceScale != 1.0 && info.Transformer.ClassDropoutProb <= 0)
            throw new LdmException($"'{description}' was trained without label dropout, so it has no null class for guidance; evaluate with --guidance 1.");
        Info = info;
        Options = options;
        Description = description;
    }

    /// <summary>Loads a denoiser checkpoint (<see cref="TransformerCheckpoint"/>) and samples from it.</summary>
    /// <param name="decoder">The autoencoder's decode for latent-space checkpoints (see <see cref="SampleDecoder"/>).</param>
    public static CheckpointSampleSource Load(string path, IReadOnlyList<int>? classIds, int count, SamplingOptions options,
        SampleDecoder? decoder = null)
    {
        if (!File.Exists(path)) throw new LdmException($"denoiser checkpoint '{path}' does not exist; pass a file made by ldm train or ldm convert.");
        var info = TransformerCheckpoint.PeekInfo(path);
        if (!info.IsPixelSpace && decoder is null)
            throw new LdmException($"'{path}' is a latent-space denoiser: its samples must be decoded by its autoencoder before evaluation, and no autoencoder was given; evaluate a pixel-space checkpoint, or decode with `ldm sample` and evaluate the images.");
        var ids = classIds ?? Enumerable.Range(0, info.Transformer.NumClasses).ToList();
        var (model, _) = TransformerCheckpoint.Load(path);
        try
        {
            return new CheckpointSampleSource(model, info, ids, count, options, Describe(path, options), decoder, ownsModel: true);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>"model.safetensors (ddim, 50 steps, guidance 4, seed 0, float32)".</summary>
    public static string Describe(string path, SamplingOptions o) => string.Create(CultureInfo.InvariantCulture,
        $"{path} ({o.Sampler.ToString().ToLowerInvariant()}, {o.Steps} steps, guidance {o.GuidanceScale:G}, seed {o.Seed}, {(o.ComputeDtype == ScalarType.BFloat16 ? "bf16" : "float32")})");

    /// <summary>Samples model batch by model batch (<see cref="SamplingOptions.BatchSize"/>), handed out in pieces of at
    /// most <paramref name="batchSize"/>; stops generating once <paramref name="limit"/> images are out.</summary>
    public IEnumerable<SampleBatch> Batches(int batchSize, long? limit = null)
    {
        if (batchSize < 1) throw new LdmException($"batch size must be positive, got {batchSize}.");
        int n = (int)Math.Min(_labels.Length, limit ?? long.MaxValue);
        if (n == 0) yield break;
        var sampler = new ClassConditionalSampler(_model, Info);
        int begin = 0;
        // Only the first n labels are sampled: the noise is drawn model batch by model batch, so every full batch equals
        // the unlimited run's; only a smaller last batch differs.
        foreach (var samples in sampler.SampleBatches(_labels[..n], Options, OnStep))
        {
            using (samples)
            {
                long len = samples.shape[0];
                for (long offset = 0; offset < len; offset += batchSize)
                {
                    long part = Math.Min(batchSize, len - offset);
                    SampleBatch batch;
                    using (var scope = torch.NewDisposeScope())
                    {
                        var images = _decode(samples.narrow(0, offset, part));
                        var labels = torch.tensor(_labels.AsSpan(begin + (int)offset, (int)part).ToArray().Select(c => (long)c).ToArray());
                        batch = SampleBatch.FromSigned(images, labels);
                        batch.Images.MoveToOuterDisposeScope();
                        batch.Labels!.MoveToOuterDisposeScope();
                    }
                    yield return batch;
                }
                begin += (int)len;
            }
        }
    }

    public void Dispose()
    {
        if (_ownsModel) _model.Dispose();
    }
}
