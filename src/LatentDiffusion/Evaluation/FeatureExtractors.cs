using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Evaluation;

/// <summary>
/// A network that turns images into feature vectors (for FID, precision/recall) and optionally class logits
/// (for the Inception Score or sample accuracy). <see cref="Name"/> goes into every report, so that an FID on
/// classifier features is never mistaken for an Inception FID.
/// </summary>
public interface IFeatureExtractor : IDisposable
{
    /// <summary>E.g. "inception-v3-fid (pool3, 2048-d)" or "classifier:/path/clf.safetensors (penultimate, 256-d)".</summary>
    string Name { get; }
    /// <summary>Channels the network wants when images are read from files.</summary>
    int Channels { get; }
    int FeatureDim { get; }
    /// <summary>Class names of the logits when they are a labelled classifier's (sample accuracy needs them); else empty.</summary>
    IReadOnlyList<string> ClassNames { get; }
    bool HasLogits { get; }
    /// <summary>Features (N, D) float32 and, when <see cref="HasLogits"/>, logits (N, classes), for uint8 images NCHW.</summary>
    (Tensor features, Tensor? logits) Extract(Tensor images);
}

/// <summary>pytorch-fid's Inception pool3 features; logits (1008, for the Inception Score) when the weights have them.</summary>
public sealed class InceptionFeatureExtractor(FidInceptionV3 network) : IFeatureExtractor
{
    public static InceptionFeatureExtractor Load(string? weightsPath) => new(FidInceptionV3.Load(weightsPath, withLogits: null));

    public string Name => $"inception-v3-fid (pool3, {FidInceptionV3.FeatureDim}-d)";
    public int Channels => 3;
    public int FeatureDim => FidInceptionV3.FeatureDim;
    public IReadOnlyList<string> ClassNames => [];
    public bool HasLogits => network.HasLogits;

    public (Tensor features, Tensor? logits) Extract(Tensor images)
    {
        using var scope = torch.NewDisposeScope();
        var x = images.dtype == ScalarType.Byte ? images.to(ScalarType.Float32) / 255.0 : images;
        if (!network.HasLogits) return (network.Features(x).MoveToOuterDisposeScope(), null);
        var (f, l) = network.FeaturesAndLogits(x);
        return (f.MoveToOuterDisposeScope(), l.MoveToOuterDisposeScope());
    }

    public void Dispose() => network.Dispose();
}

/// <summary>A trained <see cref="DomainClassifier"/>: penultimate features and class logits.</summary>
public sealed class ClassifierFeatureExtractor(DomainClassifier classifier, string source) : IFeatureExtractor
{
    public static ClassifierFeatureExtractor Load(string path) => new(DomainClassifier.Load(path), path);

    public DomainClassifier Classifier => classifier;
    public string Name => $"classifier:{source} (penultimate, {classifier.Config.FeatureDim}-d)";
    public int Channels => classifier.Config.Channels;
    public int FeatureDim => classifier.Config.FeatureDim;
    public IReadOnlyList<string> ClassNames => classifier.Config.ClassNames;
    public bool HasLogits => true;

    public (Tensor features, Tensor? logits) Extract(Tensor images)
    {
        classifier.eval();
        using var noGrad = torch.no_grad();
        var (f, l) = classifier.FeaturesAndLogits(images);
        return (f, l);
    }

    public void Dispose() => classifier.Dispose();
}
