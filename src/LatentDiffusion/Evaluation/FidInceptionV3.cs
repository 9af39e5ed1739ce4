using TorchSharp;
using TorchSharp.Modules;
using LatentDiffusion.IO;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace LatentDiffusion.Evaluation;

/// <summary>
/// The InceptionV3 of pytorch-fid (<c>InceptionV3</c> with <c>use_fid_inception=True</c>): torchvision's Inception3
/// with the FID blocks, grouped as pytorch-fid groups it so that the state-dict keys are <c>blocks.{i}.{j}.*</c>:
/// block 0 = Conv2d_1a/2a/2b + max-pool (64 channels), block 1 = Conv2d_3b/4a + max-pool (192), block 2 = Mixed_5b..6e
/// (768), block 3 = Mixed_7a/7b/7c + global average pool (2048: the pool3 features of FID).
/// Input: images NCHW in [0, 1]; they are resized to 299×299 (bilinear, align_corners=False, no antialias) and
/// scaled to [-1, 1], as the TF graph expects. Weights: the TF-ported <see cref="WeightsFileName"/> (torchvision
/// naming) or pytorch-fid's state dict (blocks naming); see <see cref="Load"/>.
/// With <c>withLogits</c> the 1008-way <c>fc</c> layer of the weights file is kept for the Inception Score.
/// </summary>
public sealed class FidInceptionV3 : nn.Module<Tensor, Tensor[]>
{
    /// <summary>File name of pytorch-fid's TF-ported Inception weights.</summary>
    public const string WeightsFileName = "pt_inception-2015-12-05-6726825d.pth";
    /// <summary>Where <see cref="WeightsFileName"/> can be downloaded (pytorch-fid's release).</summary>
    public const string WeightsUrl = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth";
    /// <summary>Environment variable naming the weights file when no path is given.</summary>
    public const string WeightsEnvVar = "LDM_INCEPTION_WEIGHTS";
    /// <summary>Size of the pool3 feature vector FID is computed on.</summary>
    public const int FeatureDim = 2048;
    /// <summary>Classes of the TF Inception's <c>fc</c> layer (1000 ImageNet classes plus 8 unused), the Inception Score's logits.</summary>
    public const int LogitClasses = 1008;
    /// <summary>Side the input images are resized to (299×299) before the network.</summary>
    public const int ResizeTo = 299;
    /// <summary>Channels of the output of each block.</summary>
    public static readonly int[] BlockChannels = [64, 192, 768, 2048];

    readonly ModuleList<Sequential> blocks;
    readonly Linear? fc;
    readonly int[] _outputBlocks;
    readonly bool _resize, _normalize;

    /// <summary>The network with freshly initialised weights (load real ones with <see cref="Load"/>).</summary>
    /// <param name="outputBlocks">Which block outputs <see cref="forward"/> returns, in ascending order (pytorch-fid: default [3]).</param>
    /// <param name="resizeInput">Resize inputs to 299×299 first (bilinear), as pytorch-fid does.</param>
    /// <param name="normalizeInput">Scale inputs from [0, 1] to [−1, 1] first.</param>
    /// <param name="withLogits">Adds the 1008-way classifier <c>fc</c> (needed for the Inception Score).</param>
    public FidInceptionV3(IEnumerable<int>? outputBlocks = null, bool resizeInput = true, bool normalizeInput = true, bool withLogits = false)
        : base(nameof(FidInceptionV3))
    {
        _outputBlocks = (outputBlocks ?? [3]).Distinct().Order().ToArray();
        if (_outputBlocks.Length == 0 || _outputBlocks.Any(b => b is < 0 or > 3))
            throw new LdmException($"Inception output blocks must be among 0..3, got [{string.Join(",", _outputBlocks)}]; choose from 0, 1, 2, 3.");
        _resize = resizeInput; _normalize = normalizeInput;
        blocks = nn.ModuleList(
            nn.Sequential(
                new BasicConv2d(3, 32, 3, stride: 2),      // Conv2d_1a_3x3
                new BasicConv2d(32, 32, 3),                // Conv2d_2a_3x3
                new BasicConv2d(32, 64, 3, padding: 1),    // Conv2d_2b_3x3
                nn.MaxPool2d(3, 2)),
            nn.Sequential(
                new BasicConv2d(64, 80, 1),                // Conv2d_3b_1x1
                new BasicConv2d(80, 192, 3),               // Conv2d_4a_3x3
                nn.MaxPool2d(3, 2)),
            nn.Sequential(
                new FidInceptionA(192, 32), new FidInceptionA(256, 64), new FidInceptionA(288, 64), // Mixed_5b/c/d
                new InceptionB(288),                                                               // Mixed_6a
                new FidInceptionC(768, 128), new FidInceptionC(768, 160),                          // Mixed_6b/c
                new FidInceptionC(768, 160), new FidInceptionC(768, 192)),                         // Mixed_6d/e
            nn.Sequential(
                new InceptionD(768),                                                               // Mixed_7a
                new FidInceptionE(1280, maxPoolBranch: false),                                     // Mixed_7b
                new FidInceptionE(2048, maxPoolBranch: true),                                      // Mixed_7c
                nn.AdaptiveAvgPool2d(1)));
        if (withLogits) fc = nn.Linear(FeatureDim, LogitClasses);
        RegisterComponents();
        eval();
    }

    /// <summary>Whether the 1008-way <c>fc</c> layer is present (see <see cref="FeaturesAndLogits"/>).</summary>
    public bool HasLogits => fc is not null;
    /// <summary>The blocks whose outputs <see cref="forward"/> returns, ascending.</summary>
    public IReadOnlyList<int> OutputBlocks => _outputBlocks;

    /// <summary>The selected block outputs (pytorch-fid's <c>InceptionV3.forward</c>) for images NCHW in [0, 1].</summary>
    public override Tensor[] forward(Tensor images) => Run(images, _outputBlocks, logits: false).blocks;

    /// <summary>Pool3 features (N, 2048) for images NCHW in [0, 1], 1 or 3 channels (1 channel is repeated).</summary>
    public Tensor Features(Tensor images) => Run(images, [3], logits: false).blocks[0].flatten(1);

    /// <summary>Pool3 features (N, 2048) and the 1008 logits without the fc bias (torch-fidelity's "logits_unbiased").</summary>
    public (Tensor features, Tensor logits) FeaturesAndLogits(Tensor images)
    {
        if (fc is null) throw new LdmException("this Inception network was built without its classifier layer; load it with withLogits: true to compute the Inception Score.");
        var (outs, logits) = Run(images, [3], logits: true);
        return (outs[0].flatten(1), logits!);
    }

    (Tensor[] blocks, Tensor? logits) Run(Tensor images, int[] wanted, bool logits)
    {
        if (images.dim() != 4 || (images.shape[1] != 3 && images.shape[1] != 1))
            throw new LdmException($"Inception needs images shaped (N, 3, H, W) or (N, 1, H, W), got [{string.Join(",", images.shape)}]; pass NCHW images in [0, 1].");
        using var noGrad = torch.no_grad();
        using var scope = NewDisposeScope();
        var x = images.to(ScalarType.Float32, Devices.Of(this));   // images may come from the CPU; the network may not be there
        if (x.shape[1] == 1) x = x.expand(-1, 3, -1, -1);
        if (_resize) x = F.interpolate(x, size: [ResizeTo, ResizeTo], mode: InterpolationMode.Bilinear, align_corners: false);
        if (_normalize) x = 2 * x - 1;
        var outs = new List<Tensor>();
        int last = wanted.Max();
        for (int i = 0; i <= last; i++)
        {
            x = blocks[i].forward(x);
            if (wanted.Contains(i)) outs.Add(x);
        }
        Tensor? l = logits ? torch.matmul(x.flatten(1), fc!.weight!.t()) : null;
        foreach (var o in outs) o.MoveToOuterDisposeScope();
        l?.MoveToOuterDisposeScope();
        return (outs.ToArray(), l);
    }

    // ---- weights ---------------------------------------------------------------------------------------------

    /// <summary>torchvision Inception3 module name → pytorch-fid block path.</summary>
    static readonly Dictionary<string, string> TorchvisionToBlock = new()
    {
        ["Conv2d_1a_3x3"] = "blocks.0.0", ["Conv2d_2a_3x3"] = "blocks.0.1", ["Conv2d_2b_3x3"] = "blocks.0.2",
        ["Conv2d_3b_1x1"] = "blocks.1.0", ["Conv2d_4a_3x3"] = "blocks.1.1",
        ["Mixed_5b"] = "blocks.2.0", ["Mixed_5c"] = "blocks.2.1", ["Mixed_5d"] = "blocks.2.2", ["Mixed_6a"] = "blocks.2.3",
        ["Mixed_6b"] = "blocks.2.4", ["Mixed_6c"] = "blocks.2.5", ["Mixed_6d"] = "blocks.2.6", ["Mixed_6e"] = "blocks.2.7",
        ["Mixed_7a"] = "blocks.3.0", ["Mixed_7b"] = "blocks.3.1", ["Mixed_7c"] = "blocks.3.2",
    };

    /// <summary>Maps a torchvision-named key (<c>Mixed_5b.branch5x5_1.conv.weight</c>) to our key
    /// (<c>blocks.2.0.branch5x5_1.conv.weight</c>); keys already in blocks naming, and <c>fc.*</c>, are returned unchanged;
    /// anything else gives null.</summary>
    public static string? ToModuleKey(string key)
    {
        if (key.StartsWith("blocks.", StringComparison.Ordinal) || key.StartsWith("fc.", StringComparison.Ordinal)) return key;
        int dot = key.IndexOf('.');
        if (dot < 0) return null;
        return TorchvisionToBlock.TryGetValue(key[..dot], out var block) ? block + key[dot..] : null;
    }

    /// <summary>Loads a state dict in either naming (strict on everything the network uses; <c>fc.*</c> is skipped
    /// unless the network has logits, <c>AuxLogits.*</c> is always skipped).</summary>
    public void LoadWeights(IReadOnlyDictionary<string, Tensor> stateDict, string source)
    {
        var mapped = new Dictionary<string, Tensor>();
        foreach (var (k, v) in stateDict)
        {
            if (k.StartsWith("AuxLogits.", StringComparison.Ordinal)) continue;
            if (k.StartsWith("fc.", StringComparison.Ordinal) && fc is null) continue;
            var key = ToModuleKey(k) ?? k; // unknown keys stay as they are and are reported by the strict loader
            mapped[key] = v;
        }
        // Half-precision files (as the parity fixture) are upcast exactly by the dtype conversion in StateDict.Load.
        StateDict.Load(this, mapped, source);
    }

    /// <summary>
    /// Builds the network and loads the FID weights from <paramref name="weightsPath"/>, or when null from the
    /// environment variable <see cref="WeightsEnvVar"/>. Accepts the TF-ported .pth of pytorch-fid or a safetensors
    /// file in either naming. A missing file is an <see cref="LdmException"/> that says where to get it.
    /// </summary>
    /// <param name="weightsPath">The weights file; null: the file named by <see cref="WeightsEnvVar"/>.</param>
    /// <param name="withLogits">true: the file must hold <c>fc.*</c>; false: ignore it; null: keep it when present.</param>
    /// <param name="outputBlocks">Which block outputs <see cref="forward"/> returns (default [3]).</param>
    public static FidInceptionV3 Load(string? weightsPath = null, bool? withLogits = false, IEnumerable<int>? outputBlocks = null)
    {
        string path = ResolveWeightsPath(weightsPath);
        var dict = ReadStateDict(path);
        bool logits = withLogits ?? dict.ContainsKey("fc.weight");
        var model = new FidInceptionV3(outputBlocks, withLogits: logits);
        try
        {
            if (logits && !dict.ContainsKey("fc.weight"))
                throw new LdmException($"'{path}' holds no classifier layer (fc.weight), needed for the Inception Score; use {WeightsFileName} or leave out the Inception Score.");
            model.LoadWeights(dict, path);
        }
        catch { model.Dispose(); throw; }
        finally { foreach (var t in dict.Values) t.Dispose(); }
        return model;
    }

    /// <summary>The weights path from the argument or the environment, checked to exist.</summary>
    public static string ResolveWeightsPath(string? weightsPath)
    {
        string? path = string.IsNullOrWhiteSpace(weightsPath) ? Environment.GetEnvironmentVariable(WeightsEnvVar) : weightsPath;
        if (string.IsNullOrWhiteSpace(path))
            throw new LdmException($"the FID Inception weights are not set; download {WeightsUrl} and pass its path or set {WeightsEnvVar}.");
        if (!File.Exists(path))
            throw new LdmException($"the FID Inception weights file '{path}' does not exist; download {WeightsUrl} and put it there (or pass the path where it is, or set {WeightsEnvVar}).");
        return path;
    }

    static Dictionary<string, Tensor> ReadStateDict(string path)
    {
        if (path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
        {
            using var file = SafetensorsFile.Open(path);
            return file.ReadAll();
        }
        return PyTorchCheckpoint.Load(path);
    }
}
