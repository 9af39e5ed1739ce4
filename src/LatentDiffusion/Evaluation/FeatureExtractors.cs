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
    /// <summary>Length D of each feature vector.</summary>
    int FeatureDim { get; }
    /// <summary>Class names of the logits when they are a labelled classifier's (sample accuracy needs them); else empty.</summary>
    IReadOnlyList<string> ClassNames { get; }
    /// <summary>Whether <see cref="Extract"/> also returns class logits.</summary>
    bool HasLogits { get; }
    /// <summary>Features (N, D) float32 and, when <see cref="HasLogits"/>, logits (N, classes), for uint8 images NCHW.</summary>
    (Tensor features, Tensor? logits) Extract(Tensor images);
}

/// <summary>pytorch-fid's Inception pool3 features; logits (1008, for the Inception Score) when the weights have them.</summary>
public sealed class InceptionFeatureExtractor(FidInceptionV3 network) : IFeatureExtractor
{
    /// <summary>Loads the FID Inception from <paramref name="weightsPath"/> (null: the <see cref="FidInceptionV3.WeightsEnvVar"/> file), with logits when the weights have them.</summary>
    public static InceptionFeatureExtractor Load(string? weightsPath) => new(FidInceptionV3.Load(weightsPath, withLogits: null));

    /// <inheritdoc/>
    public string Name => $"inception-v3-fid (pool3, {FidInceptionV3.FeatureDim}-d)";
    /// <summary>3: gray images are repeated to RGB.</summary>
    public int Channels => 3;
    /// <summary>2048 (pool3).</summary>
    public int FeatureDim => FidInceptionV3.FeatureDim;
    /// <summary>Empty: the Inception's ImageNet logits have no class names here.</summary>
    public IReadOnlyList<string> ClassNames => [];
    /// <summary>Whether the loaded weights include the 1008-way <c>fc</c> layer (needed for the Inception Score).</summary>
    public bool HasLogits => network.HasLogits;

    /// <inheritdoc/>
    public (Tensor features, Tensor? logits) Extract(Tensor images)
    {
        using var scope = torch.NewDisposeScope();
        var x = images.dtype == ScalarType.Byte ? images.to(ScalarType.Float32) / 255.0 : images;
        if (!network.HasLogits) return (network.Features(x).MoveToOuterDisposeScope(), null);
        var (f, l) = network.FeaturesAndLogits(x);
        return (f.MoveToOuterDisposeScope(), l.MoveToOuterDisposeScope());
    }

    /// <summary>Disposes the network.</summary>
    public void Dispose() => network.Dispose();
}

/// <summary>A trained <see cref="DomainClassifier"/>: penultimate features and class logits.</summary>
public sealed class ClassifierFeatureExtractor(DomainClassifier classifier, string source) : IFeatureExtractor
{
    /// <summary>Loads a <see cref="DomainClassifier"/> checkpoint as a feature extractor; <paramref name="path"/> goes into <see cref="Name"/>.</summary>
    public static ClassifierFeatureExtractor Load(string path) => new(DomainClassifier.Load(path), path);

    /// <summary>The classifier the features come from.</summary>
    public DomainClassifier Classifier => classifier;
    /// <inheritdoc/>
    public string Name => $"classifier:{source} (penultimate, {classifier.Config.FeatureDim}-d)";
    /// <summary>The classifier's input channels (1 gray or 3 RGB).</summary>
    public int Channels => classifier.Config.Channels;
    /// <summary>Size of the classifier's penultimate layer.</summary>
    public int FeatureDim => classifier.Config.FeatureDim;
    /// <summary>The classifier's class names, in label order.</summary>
    public IReadOnlyList<string> ClassNames => classifier.Config.ClassNames;
    /// <summary>Always true: the classifier's head gives the logits.</summary>
    public bool HasLogits => true;

    /// <inheritdoc/>
    public (Tensor features, Tensor? logits) Extract(Tensor images)
    {
        classifier.eval();
        using var noGrad = torch.no_grad();
        var (f, l) = classifier.FeaturesAndLogits(images);
        return (f, l);
    }

    /// <summary>Disposes the classifier.</summary>
    public void Dispose() => classifier.Dispose();
}
