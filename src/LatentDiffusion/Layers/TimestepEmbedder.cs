using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LatentDiffusion.Layers;

/// <summary>
/// Embeds diffusion timesteps: a fixed sinusoidal frequency embedding (256 wide, as DiT) followed by
/// <c>mlp.0</c> Linear, SiLU, <c>mlp.2</c> Linear.
/// </summary>
internal sealed class TimestepEmbedder : nn.Module<Tensor, Tensor>
{
    private readonly Sequential mlp;

    /// <summary>Width of the sinusoidal features DiT feeds the MLP (its default).</summary>
    public const int DefaultFrequencyEmbeddingSize = 256;

    public int FrequencyEmbeddingSize { get; }

    public TimestepEmbedder(int hiddenSize, int frequencyEmbeddingSize = DefaultFrequencyEmbeddingSize) : base(nameof(TimestepEmbedder))
    {
        FrequencyEmbeddingSize = frequencyEmbeddingSize;
        mlp = nn.Sequential(
            ("0", nn.Linear(frequencyEmbeddingSize, hiddenSize)),
            ("1", nn.SiLU()),
            ("2", nn.Linear(hiddenSize, hiddenSize)));
        RegisterComponents();
    }

    /// <summary>The two linear layers of the MLP (indices 0 and 2 of <c>mlp</c>).</summary>
    public (Linear first, Linear second) Linears => ((Linear)mlp[0], (Linear)mlp[2]);

    /// <summary>t: (N) timesteps, integer or fractional. Returns (N, hidden) in the MLP's dtype.</summary>
    public override Tensor forward(Tensor t)
    {
        // The sinusoid is always computed in float32 (as the official code), then cast to the weights' dtype (e.g. bf16).
        using var freq = TimestepEmbedding(t, FrequencyEmbeddingSize);
        var dtype = Linears.first.weight!.dtype;
        if (freq.dtype == dtype) return mlp.forward(freq);
        using var cast = freq.to(dtype);
        return mlp.forward(cast);
    }

    /// <summary>
    /// Sinusoidal timestep embedding of GLIDE/DiT: (N) → (N, dim) = [cos(t·f) | sin(t·f)] with
    /// f_k = exp(−ln(maxPeriod)·k/half), k &lt; half = dim/2; an odd dim gets a zero last column. Float32.
    /// </summary>
    public static Tensor TimestepEmbedding(Tensor t, int dim, double maxPeriod = 10000)
    {
        if (dim <= 0) throw new ArgumentOutOfRangeException(nameof(dim), "the embedding size must be positive");
        using var scope = torch.NewDisposeScope();
        int half = dim / 2;
        // Same op order as the official float32 code so rounding matches: (-ln P * k) / half, then exp.
        var freqs = (torch.arange(0, half, dtype: ScalarType.Float32, device: t.device) * (-Math.Log(maxPeriod)) / half).exp();
        var args = t.to(ScalarType.Float32).unsqueeze(1) * freqs.unsqueeze(0);
        var embedding = torch.cat([args.cos(), args.sin()], 1);
        if (dim % 2 == 1)
            embedding = torch.cat([embedding, torch.zeros(embedding.shape[0], 1, dtype: ScalarType.Float32, device: t.device)], 1);
        return embedding.MoveToOuterDisposeScope();
    }
}
