using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using LatentDiffusion.IO;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace LatentDiffusion.Evaluation;

/// <summary>Shape of a <see cref="DomainClassifier"/>; stored as the checkpoint's JSON config.</summary>
public sealed record DomainClassifierConfig
{
    /// <summary>1 (gray) or 3 (RGB).</summary>
    public int Channels { get; init; } = 1;
    /// <summary>Square image side the classifier was trained on (28, 32 or 64); other sizes are resized to it.</summary>
    public int ImageSize { get; init; } = 28;
    /// <summary>Name of each class, in label order; their number sets the classifier head's size.</summary>
    public string[] ClassNames { get; init; } = [];
    /// <summary>Channels of the three convolution blocks.</summary>
    public int[] Widths { get; init; } = [32, 64, 128];
    /// <summary>Size of the penultimate feature layer (the features of "FID (classifier features)").</summary>
    public int FeatureDim { get; init; } = 256;

    /// <summary>Number of classes (the length of <see cref="ClassNames"/>).</summary>
    [JsonIgnore] public int NumClasses => ClassNames.Length;

    /// <summary>Checks every field; throws <see cref="LdmException"/> naming the bad one.</summary>
    public void Validate()
    {
        if (Channels is not (1 or 3)) throw new LdmException($"classifier channels must be 1 or 3, got {Channels}; use gray or RGB images.");
        if (ImageSize is < 8 or > 512) throw new LdmException($"classifier image size {ImageSize} is outside 8..512; use 28, 32 or 64.");
        if (ClassNames.Length < 2) throw new LdmException($"a classifier needs at least 2 classes, got {ClassNames.Length}; check the data set's labels.");
        if (Widths.Length == 0 || Widths.Any(w => w < 1) || FeatureDim < 1) throw new LdmException("classifier widths and feature size must be positive; fix the config.");
    }
}

/// <summary>
/// A small CNN for data where ImageNet's Inception does not fit (Fashion-MNIST, the built-in shapes): convolution
/// blocks (3×3 conv, BatchNorm, ReLU, 2× max-pool between blocks), global average pooling, a penultimate feature layer
/// (Linear + ReLU) and a linear head. Input: images NCHW in [0, 1] (mapped to [-1, 1] inside).
/// The penultimate features serve "FID (classifier features)"; the predictions serve "sample accuracy".
/// </summary>
public sealed class DomainClassifier : nn.Module<Tensor, Tensor>
{
    /// <summary>The model kind written into classifier checkpoints.</summary>
    public const string ModelKind = "classifier";

    readonly Sequential conv;
    readonly Linear feature;
    readonly Linear head;

    /// <summary>The shape the classifier was built with.</summary>
    public DomainClassifierConfig Config { get; }

    /// <summary>A new classifier of this shape with torch's default initialisation (seeded: <see cref="DomainClassifierTrainer.Create"/>).</summary>
    public DomainClassifier(DomainClassifierConfig config) : base(nameof(DomainClassifier))
    {
        config.Validate();
        Config = config;
        var layers = new List<(string, nn.Module<Tensor, Tensor>)>();
        int inCh = config.Channels;
        for (int i = 0; i < config.Widths.Length; i++)
        {
            if (i > 0) layers.Add(($"pool{i}", nn.MaxPool2d(2)));
            layers.Add(($"conv{i}", nn.Conv2d(inCh, config.Widths[i], 3, padding: 1, bias: false)));
            layers.Add(($"bn{i}", nn.BatchNorm2d(config.Widths[i])));
            layers.Add(($"relu{i}", nn.ReLU()));
            inCh = config.Widths[i];
        }
        conv = nn.Sequential(layers);
        feature = nn.Linear(inCh, config.FeatureDim);
        head = nn.Linear(config.FeatureDim, config.NumClasses);
        RegisterComponents();
    }

    /// <summary>Class logits (N, classes).</summary>
    public override Tensor forward(Tensor images)
    {
        using var scope = NewDisposeScope();
        return head.forward(Features(images)).MoveToOuterDisposeScope();
    }

    /// <summary>Penultimate features (N, FeatureDim), after the ReLU.</summary>
    public Tensor Features(Tensor images)
    {
        using var scope = NewDisposeScope();
        var x = Prepare(images);
        x = conv.forward(x);
        x = x.mean([2, 3]);
        return F.relu(feature.forward(x)).MoveToOuterDisposeScope();
    }

    /// <summary>Both at once (one forward pass).</summary>
    public (Tensor features, Tensor logits) FeaturesAndLogits(Tensor images)
    {
        using var scope = NewDisposeScope();
        var f = Features(images);
        var l = head.forward(f);
        return (f.MoveToOuterDisposeScope(), l.MoveToOuterDisposeScope());
    }

    /// <summary>uint8 or float images in [0, 1] → float [-1, 1] with the classifier's channels and size.</summary>
    Tensor Prepare(Tensor images)
    {
        if (images.dim() != 4) throw new LdmException($"the classifier needs images (N, C, H, W), got [{string.Join(",", images.shape)}]; pass NCHW images.");
        var x = images.to(ScalarType.Float32, Devices.Of(this));   // images may come from the CPU; the network may not be there
        if (images.dtype == ScalarType.Byte) x = x / 255.0;
        x = IO.ImageChannels.Convert(x, Config.Channels)
            ?? throw new LdmException($"the classifier takes {Config.Channels}-channel images, got {x.shape[1]} channels; pass gray or RGB images.");
        if (x.shape[2] != Config.ImageSize || x.shape[3] != Config.ImageSize)
            x = F.interpolate(x, size: [Config.ImageSize, Config.ImageSize], mode: InterpolationMode.Bilinear, align_corners: false);
        return x * 2 - 1;
    }

    /// <summary>Saves weights and config as an ldm checkpoint of kind "classifier".</summary>
    public void Save(string path, IReadOnlyDictionary<string, string>? extra = null) =>
        ModelCheckpoint.Save(path, ModelKind, Config, this, extra: extra);

    /// <summary>Loads a classifier checkpoint written by <see cref="Save"/>, in eval mode.</summary>
    public static DomainClassifier Load(string path)
    {
        if (!File.Exists(path)) throw new LdmException($"classifier checkpoint '{path}' does not exist; train one (DomainClassifierTrainer) and save it there.");
        var ckpt = ModelCheckpoint.Load(path, ModelKind);
        try
        {
            // A misspelled key would silently take its default (the widths, say, and then the weights would not fit).
            ConfigKeys.RequireKnown(ckpt.Config, ConfigKeys.Of(typeof(DomainClassifierConfig), ModelCheckpoint.JsonOptions), $"the classifier config of '{path}'");
            var config = System.Text.Json.JsonSerializer.Deserialize<DomainClassifierConfig>(ckpt.Config.ToJsonString(), ModelCheckpoint.JsonOptions)
                ?? throw new LdmException($"'{path}' has an empty classifier config; re-train the classifier.");
            var model = new DomainClassifier(config);
            StateDict.Load(model, ckpt.Weights, path);
            model.eval();
            return model;
        }
        catch (System.Text.Json.JsonException e)
        {
            throw new LdmException($"'{path}' has an unreadable classifier config ({e.Message}); re-train the classifier.");
        }
        finally { foreach (var t in ckpt.Weights.Values) t.Dispose(); }
    }
}
