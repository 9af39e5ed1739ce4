using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LatentDiffusion.Layers;

/// <summary>
/// The Transformer feed-forward sublayer with timm's names: <c>fc1</c>, GELU (tanh approximation, as DiT), <c>fc2</c>.
/// </summary>
internal sealed class Mlp : nn.Module<Tensor, Tensor>
{
    private readonly Linear fc1;
    private readonly GELU act;
    private readonly Linear fc2;

    public Mlp(int inFeatures, int hiddenFeatures) : base(nameof(Mlp))
    {
        fc1 = nn.Linear(inFeatures, hiddenFeatures);
        // DiT uses the tanh approximation; exact GELU changes outputs well beyond float32 rounding.
        act = nn.GELU(GELU.Approximate.tanh);
        fc2 = nn.Linear(hiddenFeatures, inFeatures);
        RegisterComponents();
    }

    /// <summary>The output layer; zero-initialised by models that want a block to start as the identity.</summary>
    public Linear Fc2 => fc2;

    public override Tensor forward(Tensor x)
    {
        using var hidden = fc1.forward(x);
        using var activated = act.forward(hidden);
        return fc2.forward(activated);
    }
}
