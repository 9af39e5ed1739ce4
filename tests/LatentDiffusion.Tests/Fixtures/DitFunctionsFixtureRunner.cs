using LatentDiffusion.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests.Fixtures;

/// <summary>Runs `dit_functions` fixtures: DiT's sinusoidal timestep embedding and MAE/DiT's 2-D sin-cos position table.</summary>
[FixtureKind("dit_functions")]
public sealed class DitFunctionsFixtureRunner(Fixture fixture) : FixtureKindRunner(fixture)
{
    public override bool Supports(string op) => op is "timestep_embedding" or "get_2d_sincos_pos_embed";

    public override Dictionary<string, Tensor> Run(FixtureCase c)
    {
        var result = new Dictionary<string, Tensor>();
        switch (c.Op)
        {
            case "timestep_embedding":
            {
                double maxPeriod = c.HasParam("max_period") ? c.Param("max_period") : 10000;
                result[c.Outputs.Keys.Single()] = TimestepEmbedder.TimestepEmbedding(c.Input("t"), c.IntParam("dim"), maxPeriod);
                break;
            }
            case "get_2d_sincos_pos_embed":
            {
                var table = SinCosPositionEmbedding.Get2D(c.IntParam("embed_dim"), c.IntParam("grid_size"));
                foreach (var name in c.Outputs.Keys)
                    // Output names say which form: the float64 table, or DiT's float32 cast of it.
                    result[name] = name.Contains("float32") ? table.to(ScalarType.Float32) : table;
                break;
            }
        }
        return result;
    }
}
