using LatentDiffusion.IO;
using LatentDiffusion.UNets;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests.Fixtures;

/// <summary>
/// Runs `unet_ldm` fixtures (CompVis openaimodel.UNetModel): the model is built from the manifest's official
/// constructor arguments (<see cref="UNetConfig.FromOfficial"/>, no null class row) and loaded strictly from the
/// official-named weights. Op <c>forward</c>: <c>model(x, timesteps, context, y)</c> with whichever of context and y
/// the case gives.
/// </summary>
[FixtureKind("unet_ldm")]
public sealed class UNetFixtureRunner : FixtureKindRunner
{
    readonly UNetModel model;

    public UNetFixtureRunner(Fixture fixture) : base(fixture)
    {
        model = LoadModel(fixture);
    }

    /// <summary>The fixture's official UNet: built from the manifest's config, weights loaded, eval mode.</summary>
    internal static UNetModel LoadModel(Fixture fixture)
    {
        var model = new UNetModel(UNetConfig.FromOfficial(fixture.ModelConfig));
        StateDict.Load(model, fixture.WeightsPath);
        model.eval();
        return model;
    }

    public override bool Supports(string op) => op is "forward";

    public override Dictionary<string, Tensor> Run(FixtureCase c)
    {
        using var noGrad = torch.no_grad();
        Tensor? Optional(string name) => c.Inputs.ContainsKey(name) ? c.Input(name) : null;
        var output = model.Forward(c.Input("x"), c.Input("timesteps"), Optional("context"), Optional("y"));
        return new() { [c.Outputs.Keys.Single()] = output };
    }

    public override void Dispose() => model.Dispose();
}
