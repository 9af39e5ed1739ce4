using LatentDiffusion.Evaluation;
using LatentDiffusion.Pipelines;

namespace LatentDiffusion.Studies;

/// <summary>
/// FID on a feature network's features (a domain classifier, or Inception) against reference statistics computed
/// once, plus sample accuracy when the network is a classifier: samples of every class in turn, so any count covers
/// the classes evenly. Lower FID is better; the floor (two real sets of the same size) says how low it can go.
/// </summary>
public sealed class ClassifierFidEvaluator : IStudyEvaluator, IDisposable
{
    readonly IFeatureExtractor _extractor;
    readonly FeatureStatistics _reference;
    readonly int _samples;

    /// <summary>An evaluator drawing <paramref name="samples"/> images per evaluation, compared with the features of <paramref name="reference"/>.</summary>
    /// <param name="extractor">The feature network (the caller keeps ownership).</param>
    /// <param name="reference">Real images (the evaluation's reference, e.g. the test split).</param>
    /// <param name="referenceDescription">How the reference is named in the report (e.g. <c>fashion-mnist:test</c>).</param>
    /// <param name="samples">Generated images per evaluation.</param>
    /// <param name="maxReference">Use at most this many reference images (null = all).</param>
    public ClassifierFidEvaluator(IFeatureExtractor extractor, ISampleSource reference, string referenceDescription, int samples, long? maxReference = null)
    {
        if (samples < 2) throw new LdmOptionException(nameof(ClassifierFidEvaluator), nameof(samples), samples, "be at least 2 (a covariance needs two images)");
        _extractor = extractor;
        _samples = samples;
        using var features = SampleEvaluator.Extract(extractor, reference, 250, maxReference);
        _reference = FeatureStatistics.FromActivations(features.Features);
        ReferenceCount = features.Count;
        bool classifier = extractor.ClassNames.Count > 0 && extractor is not InceptionFeatureExtractor;
        Metrics = classifier
            ? [new StudyMetric("fid", "classifier-FID", true), new StudyMetric("sample_accuracy", "sample accuracy", false)]
            : [new StudyMetric("fid", "FID", true)];
        Description = $"{(classifier ? "classifier-FID and sample accuracy" : "FID")} of {samples} samples against {ReferenceCount} images of {referenceDescription} ({extractor.Name})";
    }

    /// <summary>Reference images whose features make the statistics.</summary>
    public long ReferenceCount { get; }
    /// <inheritdoc/>
    public string Description { get; }
    /// <inheritdoc/>
    public IReadOnlyList<StudyMetric> Metrics { get; }
    /// <inheritdoc/>
    public int LastImageCount { get; private set; }

    /// <summary>The FID of real images against the reference (e.g. training images; at the evaluation's sample count this is the floor a perfect model reaches).</summary>
    public double FidOf(ISampleSource images, long? count = null)
    {
        using var features = SampleEvaluator.Extract(_extractor, images, 250, count ?? _samples);
        using var stats = FeatureStatistics.FromActivations(features.Features);
        return FrechetDistance.Compute(stats, _reference);
    }

    /// <inheritdoc/>
    public IReadOnlyDictionary<string, double> Evaluate(DiffusionPipeline pipeline, SamplingOptions sampling, CancellationToken cancel)
    {
        var source = new PipelineSampleSource(pipeline, _samples, sampling);
        using var result = SampleEvaluator.Evaluate(_extractor, source, EvaluationReference.FromStatistics(_reference, Description),
            new EvaluationOptions { BatchSize = sampling.BatchSize, PrecisionRecall = false, InceptionScore = false });
        LastImageCount = _samples;
        return Metrics.ToDictionary(m => m.Key, m => result.Report.Metrics[m.Key]);
    }

    /// <summary>Frees the reference statistics.</summary>
    public void Dispose() => _reference.Dispose();
}
