using LatentDiffusion.Evaluation;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests.Fixtures;

/// <summary>pytorch-fid's FID InceptionV3 (random float16-stored weights, upcast to float32) against the official outputs.</summary>
[FixtureKind("inception_fid")]
public sealed class InceptionFidFixtureRunner : FixtureKindRunner
{
    readonly FidInceptionV3 _model;

    public InceptionFidFixtureRunner(Fixture fixture) : base(fixture)
    {
        var cfg = fixture.ModelConfig;
        bool resize = cfg["resize_input"]?.GetValue<bool>() ?? true;
        bool normalize = cfg["normalize_input"]?.GetValue<bool>() ?? true;
        if (cfg["use_fid_inception"]?.GetValue<bool>() == false)
            throw new NotSupportedException("only the FID variant of InceptionV3 (use_fid_inception=True) is implemented");
        // Every block is computed so that any output the cases list can be returned.
        _model = new FidInceptionV3([0, 1, 2, 3], resize, normalize);
        using var file = IO.SafetensorsFile.Open(fixture.WeightsPath);
        using var scope = torch.NewDisposeScope();
        var weights = file.ReadAll();
        // The fixture is in blocks naming; also check that the torchvision names the manifest maps them to land on the
        // same keys, so that the real weights file (torchvision naming) loads into the same parameters.
        if (fixture.Manifest["model"]?["key_map_to_fid_weights_file"] is System.Text.Json.Nodes.JsonObject map)
            foreach (var (ours, theirs) in map)
                if (FidInceptionV3.ToModuleKey((string)theirs!) != ours)
                    throw new InvalidOperationException($"torchvision key {theirs} maps to {FidInceptionV3.ToModuleKey((string)theirs!)}, fixture says {ours}");
        _model.LoadWeights(weights, fixture.WeightsPath);
    }

    public override bool Supports(string op) => op == "forward";

    public override Dictionary<string, Tensor> Run(FixtureCase c)
    {
        var images = c.Input("images");
        var outs = _model.forward(images);
        var result = new Dictionary<string, Tensor>();
        foreach (var name in c.Outputs.Keys)
        {
            if (!name.StartsWith("block") || !int.TryParse(name["block".Length..], out int b))
                throw new NotSupportedException($"unknown output '{name}'");
            result[name] = outs[b];
        }
        return result;
    }

    public override void Dispose() => _model.Dispose();
}
