using LatentDiffusion.Autoencoders;
using LatentDiffusion.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests.Fixtures;

/// <summary>
/// CompVis AutoencoderKL fixtures. The model is built from the manifest's <c>{ddconfig, embed_dim}</c> and loaded
/// strictly from the CompVis-named weights. Ops: <c>encode</c> (encoder output, moments, mean, logvar, std, kl) and
/// <c>decode</c> (decode the given z; when the case gives no z but an image and eps, z = mean + std·eps of its posterior).
/// </summary>
[FixtureKind("autoencoder_kl")]
public sealed class AutoencoderKlFixtureRunner : FixtureKindRunner
{
    readonly AutoencoderKL _model;

    public AutoencoderKlFixtureRunner(Fixture fixture) : base(fixture)
    {
        _model = new AutoencoderKL(AutoencoderConfig.FromJson(fixture.ModelConfig));
        StateDict.Load(_model, fixture.WeightsPath);
        _model.eval();
    }

    public override bool Supports(string op) => op is "encode" or "decode";

    public override Dictionary<string, Tensor> Run(FixtureCase c)
    {
        using var _ = torch.no_grad();
        if (c.Op == "encode")
        {
            var image = c.Input("image");
            var posterior = _model.Encode(image);
            var all = new Dictionary<string, Tensor>
            {
                ["encoder_out"] = _model.EncoderOutput(image),
                ["moments"] = _model.Moments(image),
                ["mean"] = posterior.Mean,
                ["logvar"] = posterior.LogVar,
                ["std"] = posterior.Std,
                ["var"] = posterior.Var,
                ["kl"] = posterior.Kl(),
                ["mode"] = posterior.Mode(),
            };
            if (c.Inputs.ContainsKey("eps")) all["sample"] = posterior.Sample(c.Input("eps"));
            return all;
        }
        Tensor z = c.Inputs.ContainsKey("z")
            ? c.Input("z")
            : _model.Encode(c.Input("image")).Sample(c.Input("eps"));
        return new() { ["image"] = _model.Decode(z) };
    }

    public override void Dispose() => _model.Dispose();
}
