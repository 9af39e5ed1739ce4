using LatentDiffusion.Evaluation;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests.Fixtures;

/// <summary>pytorch-fid's calculate_frechet_distance and activation statistics, float64.</summary>
[FixtureKind("frechet_distance")]
public sealed class FrechetDistanceFixtureRunner(Fixture fixture) : FixtureKindRunner(fixture)
{
    public override bool Supports(string op) => op is "frechet_distance" or "frechet_distance_from_activations";

    public override Dictionary<string, Tensor> Run(FixtureCase c)
    {
        if (c.Op == "frechet_distance")
        {
            double fd = FrechetDistance.Compute(c.Input("mu1"), c.Input("sigma1"), c.Input("mu2"), c.Input("sigma2"));
            return new() { ["fd"] = torch.tensor(new[] { fd }, ScalarType.Float64) };
        }
        var s1 = FeatureStatistics.FromActivations(c.Input("act1"));
        var s2 = FeatureStatistics.FromActivations(c.Input("act2"));
        double d = FrechetDistance.Compute(s1, s2);
        return new()
        {
            ["mu1"] = s1.Mu, ["sigma1"] = s1.Sigma, ["mu2"] = s2.Mu, ["sigma2"] = s2.Sigma,
            ["fd"] = torch.tensor(new[] { d }, ScalarType.Float64),
        };
    }
}
