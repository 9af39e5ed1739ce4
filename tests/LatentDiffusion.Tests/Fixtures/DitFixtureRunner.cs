using System.Text.Json.Nodes;
using LatentDiffusion.IO;
using LatentDiffusion.Layers;
using LatentDiffusion.Transformers;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests.Fixtures;

/// <summary>
/// Runs `dit` fixtures (facebookresearch/DiT models.DiT): forward (with the official intermediates),
/// forward_with_cfg and unpatchify, on a model built from the manifest's constructor arguments and weights.
/// </summary>
[FixtureKind("dit")]
public sealed class DitFixtureRunner : FixtureKindRunner
{
    readonly DiffusionTransformer model;

    public DitFixtureRunner(Fixture fixture) : base(fixture)
    {
        model = LoadModel(fixture);
    }

    /// <summary>The fixture's official DiT: built from the manifest's constructor arguments, weights loaded, eval mode.</summary>
    internal static DiffusionTransformer LoadModel(Fixture fixture)
    {
        var model = new DiffusionTransformer(ConfigFrom(fixture.ModelConfig));
        StateDict.Load(model, fixture.WeightsPath);
        model.eval();
        return model;
    }

    /// <summary>The official DiT constructor arguments, with the official defaults for any that are absent.</summary>
    internal static TransformerConfig ConfigFrom(JsonObject c)
    {
        int Int(string k, int dflt) => c[k]?.GetValue<int>() ?? dflt;
        double Dbl(string k, double dflt) => c[k]?.GetValue<double>() ?? dflt;
        return TransformerConfig.FromOfficialDiT(
            inputSize: Int("input_size", 32), patchSize: Int("patch_size", 2), inChannels: Int("in_channels", 4),
            hiddenSize: Int("hidden_size", 1152), depth: Int("depth", 28), numHeads: Int("num_heads", 16),
            mlpRatio: Dbl("mlp_ratio", 4.0), classDropoutProb: Dbl("class_dropout_prob", 0.1),
            numClasses: Int("num_classes", 1000), learnSigma: c["learn_sigma"]?.GetValue<bool>() ?? true);
    }

    public override bool Supports(string op) => op is "forward" or "forward_with_cfg" or "unpatchify";

    public override Dictionary<string, Tensor> Run(FixtureCase c)
    {
        using var noGrad = torch.no_grad();
        var result = new Dictionary<string, Tensor>();
        string outName = c.Outputs.Keys.Single();
        switch (c.Op)
        {
            case "forward":
            {
                var captured = new Dictionary<string, Tensor>();
                model.DebugTap = (name, value) => captured[name] = value.detach().clone().DetachFromDisposeScope();
                try { result[outName] = model.forward(c.Input("x"), c.Input("t"), c.Input("y")); }
                finally { model.DebugTap = null; }
                foreach (var name in c.DebugOutputs.Keys)
                    if (captured.TryGetValue(name, out var v)) result["debug:" + name] = v;
                break;
            }
            case "forward_with_cfg":
            {
                // The official forward_with_cfg guides the first 3 channels; a case may say otherwise.
                int guided = c.HasParam("guided_channels") ? c.IntParam("guided_channels") : 3;
                result[outName] = model.ForwardWithCfg(c.Input("x"), c.Input("t"), c.Input("y"), c.Param("cfg_scale"), guided);
                break;
            }
            case "unpatchify":
                result[outName] = Patches.Unpatchify(c.Input("x"), model.Config.OutChannels, model.Config.PatchSize);
                break;
        }
        return result;
    }

    public override void Dispose() => model.Dispose();
}
