using LatentDiffusion.Distributed;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Evaluation;

/// <summary>Features (and logits, labels) of a whole image set, float32 on CPU.</summary>
public sealed class ExtractedFeatures : IDisposable
{
    /// <summary>Features (N, D) float32.</summary>
    public required Tensor Features { get; init; }
    /// <summary>Logits (N, classes) float32 when the extractor has them, else null.</summary>
    public Tensor? Logits { get; init; }
    /// <summary>Class labels (N) int64 when every batch was labelled, else null.</summary>
    public Tensor? Labels { get; init; }
    /// <summary>The images themselves (uint8 NCHW), kept only when asked for (e.g. to export an .npz).</summary>
    public Tensor? Images { get; init; }
    /// <summary>Number of images N.</summary>
    public long Count => Features.shape[0];

    /// <summary>Disposes every tensor.</summary>
    public void Dispose() { Features.Dispose(); Logits?.Dispose(); Labels?.Dispose(); Images?.Dispose(); }
}

/// <summary>What to compare the samples with: reference images, or precomputed statistics (FID only).</summary>
public sealed class EvaluationReference
{
    /// <summary>The reference images, or null when comparing with statistics.</summary>
    public ISampleSource? Images { get; private init; }
    /// <summary>Precomputed reference statistics, or null when comparing with images.</summary>
    public FeatureStatistics? Statistics { get; private init; }
    /// <summary>What the reference is, for the report.</summary>
    public required string Description { get; init; }

    /// <summary>Reference images: every metric (FID, precision/recall, reference accuracy) is available.</summary>
    public static EvaluationReference FromImages(ISampleSource images) => new() { Images = images, Description = images.Description };
    /// <summary>Precomputed statistics (e.g. a pytorch-fid .npz): FID only. The caller keeps ownership of <paramref name="statistics"/>.</summary>
    public static EvaluationReference FromStatistics(FeatureStatistics statistics, string description) =>
        new() { Statistics = statistics, Description = description };
}

/// <summary>Settings of <see cref="SampleEvaluator.Evaluate"/>: batch size, sample cap and which metrics to compute.</summary>
public sealed record EvaluationOptions
{
    /// <summary>Images per feature-network call.</summary>
    public int BatchSize { get; init; } = 100;
    /// <summary>At most this many samples (and reference images) are used.</summary>
    public long? MaxSamples { get; init; }
    /// <summary>Compute precision/recall (needs reference images).</summary>
    public bool PrecisionRecall { get; init; } = true;
    /// <summary>k of the k-NN radii of precision/recall.</summary>
    public int NearestK { get; init; } = 3;
    /// <summary>Compute the Inception Score (needs the Inception extractor with logits).</summary>
    public bool InceptionScore { get; init; } = true;
    /// <summary>Splits the Inception Score is averaged over.</summary>
    public int InceptionScoreSplits { get; init; } = 10;
    /// <summary>Seed of the Inception Score's shuffle; recorded in the report.</summary>
    public long Seed { get; init; } = 0;
    /// <summary>Also measure this autoencoder's reconstructions of the reference images against the reference (needs
    /// reference images, not statistics): how far the first stage alone is from the data, beside the samples' distance.</summary>
    public Autoencoders.AutoencoderKL? ReconstructionAutoencoder { get; init; }
    /// <summary>Keep the sample images in <see cref="EvaluationResult.Samples"/> (to export them).</summary>
    public bool KeepSampleImages { get; init; }
}

/// <summary>The report of <see cref="SampleEvaluator.Evaluate"/> with the extracted features (for further analysis or export).</summary>
public sealed class EvaluationResult : IDisposable
{
    /// <summary>The metrics and what they were computed on.</summary>
    public required EvaluationReport Report { get; init; }
    /// <summary>The samples' features (and images with <see cref="EvaluationOptions.KeepSampleImages"/>).</summary>
    public required ExtractedFeatures Samples { get; init; }
    /// <summary>The reference images' features, or null when the reference was statistics.</summary>
    public ExtractedFeatures? Reference { get; init; }
    /// <summary>Disposes the sample and reference features.</summary>
    public void Dispose() { Samples.Dispose(); Reference?.Dispose(); }
}

/// <summary>
/// Computes the metrics of a sample set against a reference with one feature network: FID (on that network's
/// features), precision/recall (k-NN, with reference images), Inception Score (Inception logits), sample accuracy
/// (classifier predictions vs the samples' class labels) and, for labelled reference images, reference accuracy.
/// </summary>
public static class SampleEvaluator
{
    /// <summary>Runs <paramref name="extractor"/> over a source (at most <paramref name="limit"/> images); <paramref name="progress"/> gets the running image count.</summary>
    /// <param name="group">Ranks that share the work (default: this process alone): each extracts its contiguous share
    /// of the images (whole <see cref="ISampleSource.ShardAlignment"/> runs) and every rank gets all features in the
    /// order of a single process. A source of unknown size, or with fewer runs than ranks, is read whole by every rank.</param>
    public static ExtractedFeatures Extract(IFeatureExtractor extractor, ISampleSource source, int batchSize, long? limit = null,
        bool keepImages = false, Action<long>? progress = null, IProcessGroup? group = null)
    {
        if (batchSize < 1) throw new LdmException($"batch size must be positive, got {batchSize}.");
        group ??= SingleProcess.Instance;
        long? total = source.Count is long count ? Math.Min(count, limit ?? long.MaxValue) : null;
        int alignment = Math.Max(1, source.ShardAlignment);
        if (group.Size == 1 || total is not long n || (n + alignment - 1) / alignment < group.Size)
            return ExtractAll(extractor, source.Batches(batchSize, limit), source.Description, keepImages, progress);
        using var mine = ExtractAll(extractor, source.Batches(batchSize, Shard.OfBatches(n, alignment, group.Rank, group.Size)),
            source.Description, keepImages, progress);
        return Gather(group, mine);
    }

    /// <summary>Every rank's features (and logits, labels, images when every rank has them) in rank order.</summary>
    static ExtractedFeatures Gather(IProcessGroup group, ExtractedFeatures mine)
    {
        bool Everywhere(Tensor? t)
        {
            using var present = torch.tensor(t is null ? 0L : 1L, device: torch.CPU);
            group.AllReduceSum(present);
            return present.item<long>() == group.Size;
        }
        // Decided together first: every rank must join the same gathers.
        bool logits = Everywhere(mine.Logits), labels = Everywhere(mine.Labels), images = Everywhere(mine.Images);
        return new ExtractedFeatures
        {
            Features = group.AllGather(mine.Features),
            Logits = logits ? group.AllGather(mine.Logits!) : null,
            Labels = labels ? group.AllGather(mine.Labels!) : null,
            Images = images ? group.AllGather(mine.Images!) : null,
        };
    }

    static ExtractedFeatures ExtractAll(IFeatureExtractor extractor, IEnumerable<SampleBatch> batches, string description, bool keepImages, Action<long>? progress)
    {
        var features = new List<Tensor>(); var logits = new List<Tensor>(); var labels = new List<Tensor>(); var images = new List<Tensor>();
        long count = 0; bool labelled = true;
        try
        {
            foreach (var batch in batches)
            {
                using (batch)
                using (var scope = torch.NewDisposeScope())
                using (torch.no_grad())
                {
                    var (f, l) = extractor.Extract(batch.Images);
                    features.Add(f.to(ScalarType.Float32, torch.CPU).MoveToOuterDisposeScope());
                    if (l is not null) logits.Add(l.to(ScalarType.Float32, torch.CPU).MoveToOuterDisposeScope());
                    if (batch.Labels is null) labelled = false; else labels.Add(batch.Labels.clone().MoveToOuterDisposeScope());
                    if (keepImages) images.Add(batch.Images.clone().MoveToOuterDisposeScope());
                    count += batch.Images.shape[0];
                }
                progress?.Invoke(count);
            }
            if (count == 0) throw new LdmException($"'{description}' gave no images; check the path or the sample count.");
            return new ExtractedFeatures
            {
                Features = torch.cat(features, 0),
                Logits = logits.Count == features.Count && logits.Count > 0 ? torch.cat(logits, 0) : null,
                Labels = labelled && labels.Count > 0 ? torch.cat(labels, 0) : null,
                Images = keepImages ? torch.cat(images, 0) : null,
            };
        }
        finally
        {
            foreach (var t in features.Concat(logits).Concat(labels).Concat(images)) t.Dispose();
        }
    }

    /// <summary>Extracts sample (and reference) features and computes the metrics <paramref name="options"/> asks for; <paramref name="progress"/> gets ("samples" or "reference", images done).</summary>
    /// <param name="group">Ranks that share the sampling and feature extraction (see <see cref="Extract"/>); every rank
    /// computes the same metrics from the gathered features (default: this process alone).</param>
    public static EvaluationResult Evaluate(IFeatureExtractor extractor, ISampleSource samples, EvaluationReference reference,
        EvaluationOptions options, Action<string, long>? progress = null, IProcessGroup? group = null)
    {
        var sampleFeatures = Extract(extractor, samples, options.BatchSize, options.MaxSamples, options.KeepSampleImages,
            n => progress?.Invoke("samples", n), group);
        ExtractedFeatures? refFeatures = null;
        try
        {
            var metrics = new SortedDictionary<string, double>(StringComparer.Ordinal);
            using var sampleStats = FeatureStatistics.FromActivations(sampleFeatures.Features);
            FeatureStatistics refStats;
            if (reference.Statistics is { } given)
            {
                if (given.Dim != extractor.FeatureDim)
                    throw new LdmException($"the reference statistics have {given.Dim} dimensions but {extractor.Name} gives {extractor.FeatureDim}; use statistics made with the same feature network.");
                refStats = given;
            }
            else
            {
                refFeatures = Extract(extractor, reference.Images!, options.BatchSize, options.MaxSamples, false, n => progress?.Invoke("reference", n), group);
                refStats = FeatureStatistics.FromActivations(refFeatures.Features);
            }
            try
            {
                metrics["fid"] = FrechetDistance.Compute(sampleStats, refStats);
                if (options.ReconstructionAutoencoder is { } autoencoder && reference.Images is { } refImages)
                    MeasureReconstruction(extractor, refImages, autoencoder, refStats, options, metrics, progress, group);
            }
            finally { if (!ReferenceEquals(refStats, reference.Statistics)) refStats.Dispose(); }

            if (options.PrecisionRecall && refFeatures is not null)
            {
                var (p, r) = PrecisionRecall.Compute(refFeatures.Features, sampleFeatures.Features, options.NearestK);
                metrics["precision"] = p;
                metrics["recall"] = r;
            }
            bool isInception = extractor is InceptionFeatureExtractor;
            if (options.InceptionScore && isInception && sampleFeatures.Logits is { } logits && sampleFeatures.Count >= options.InceptionScoreSplits)
            {
                var (mean, std) = InceptionScore.Compute(logits, options.InceptionScoreSplits, options.Seed);
                metrics["inception_score_mean"] = mean;
                metrics["inception_score_std"] = std;
            }
            if (!isInception && extractor.ClassNames.Count > 0)
            {
                if (sampleFeatures.Logits is { } sl && sampleFeatures.Labels is { } slab)
                    metrics["sample_accuracy"] = Accuracy(sl, slab);
                if (refFeatures?.Logits is { } rl && refFeatures.Labels is { } rlab)
                    metrics["reference_accuracy"] = Accuracy(rl, rlab);
            }
            var report = new EvaluationReport
            {
                FeatureNetwork = extractor.Name,
                Metrics = metrics,
                SampleCount = sampleFeatures.Count,
                ReferenceCount = refFeatures?.Count,
                Samples = samples.Description,
                Reference = reference.Description,
                Seed = options.Seed,
                NearestK = metrics.ContainsKey("precision") ? options.NearestK : null,
            };
            return new EvaluationResult { Report = report, Samples = sampleFeatures, Reference = refFeatures };
        }
        catch
        {
            sampleFeatures.Dispose(); refFeatures?.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The first stage alone: the reference images through <paramref name="autoencoder"/> against the reference, with
    /// the same features and number of images (reconstruction_fid, reconstruction_psnr, and reconstruction_accuracy
    /// with a classifier). A latent model's samples cannot get closer to the data than this.
    /// </summary>
    static void MeasureReconstruction(IFeatureExtractor extractor, ISampleSource referenceImages, Autoencoders.AutoencoderKL autoencoder,
        FeatureStatistics referenceStats, EvaluationOptions options, IDictionary<string, double> metrics, Action<string, long>? progress, IProcessGroup? group)
    {
        var source = new ReconstructionSampleSource(referenceImages, autoencoder, options.BatchSize);
        using var features = Extract(extractor, source, options.BatchSize, options.MaxSamples, false, n => progress?.Invoke("reconstruction", n), group);
        using (var stats = FeatureStatistics.FromActivations(features.Features))
            metrics["reconstruction_fid"] = FrechetDistance.Compute(stats, referenceStats);
        // Under ranks each reconstructed its share: the error sums add up to those of the whole set.
        using var sums = torch.tensor(new[] { source.SquaredErrorSum, source.ValueCount }, ScalarType.Float64);
        (group ?? SingleProcess.Instance).AllReduceSum(sums);
        var both = sums.data<double>().ToArray();
        metrics["reconstruction_psnr"] = ReconstructionSampleSource.Psnr(both[0], (long)both[1]);
        if (extractor is not InceptionFeatureExtractor && extractor.ClassNames.Count > 0 && features.Logits is { } l && features.Labels is { } lab)
            metrics["reconstruction_accuracy"] = Accuracy(l, lab);
    }

    /// <summary>Share of rows whose arg-max equals the label.</summary>
    public static double Accuracy(Tensor logits, Tensor labels)
    {
        using var scope = torch.NewDisposeScope();
        return logits.argmax(1).eq(labels.to(ScalarType.Int64)).to(ScalarType.Float64).mean().item<double>();
    }
}
