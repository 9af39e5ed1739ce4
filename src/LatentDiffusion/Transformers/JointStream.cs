using LatentDiffusion.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LatentDiffusion.Transformers;

/// <summary>
/// One modality's weights in an MM-DiT joint-attention block (image or condition stream): adaLN modulation from the
/// conditioning vector, a LayerNorm without affine parameters, its own q/k/v and output projections, QK-norm and MLP.
/// The attention itself is shared and runs in <see cref="JointAttentionBlock"/>. A pre-only stream (the condition
/// stream of the last block, as SD3) only contributes keys and values: it has no output projection, no MLP and only
/// shift/scale modulation and no queries (<c>kv</c> instead of <c>qkv</c>), because its output would never be read.
/// </summary>
internal sealed class JointStream : nn.Module
{
    private readonly Sequential adaLN_modulation;
    private readonly LayerNorm norm1;
    private readonly Linear? qkv;
    private readonly Linear? kv;
    private readonly RmsNorm? q_norm;
    private readonly RmsNorm k_norm;
    private readonly Linear? proj;
    private readonly LayerNorm? norm2;
    private readonly Mlp? mlp;

    public int NumHeads { get; }
    /// <summary>Only keys/values are produced (no output projection, no MLP).</summary>
    public bool PreOnly { get; }

    public JointStream(int hiddenSize, int numHeads, int mlpHidden, bool preOnly) : base(nameof(JointStream))
    {
        NumHeads = numHeads;
        PreOnly = preOnly;
        adaLN_modulation = nn.Sequential(("0", nn.SiLU()), ("1", nn.Linear(hiddenSize, (preOnly ? 2 : 6) * hiddenSize)));
        norm1 = nn.LayerNorm(hiddenSize, eps: 1e-6, elementwise_affine: false);
        k_norm = new RmsNorm(hiddenSize / numHeads);
        if (preOnly) kv = nn.Linear(hiddenSize, 2 * hiddenSize);
        else
        {
            qkv = nn.Linear(hiddenSize, 3 * hiddenSize);
            q_norm = new RmsNorm(hiddenSize / numHeads);
            proj = nn.Linear(hiddenSize, hiddenSize);
            norm2 = nn.LayerNorm(hiddenSize, eps: 1e-6, elementwise_affine: false);
            mlp = new Mlp(hiddenSize, mlpHidden);
        }
        RegisterComponents();
    }

    /// <summary>The Linear that regresses shift/scale/gate (zeroed at init: gates 0, so the stream starts as the identity).</summary>
    public Linear ModulationLinear => (Linear)adaLN_modulation[1];
    /// <summary>The QK-norm scales (ones at init).</summary>
    public IEnumerable<Parameter> QkNormWeights => q_norm is null ? [k_norm.Weight] : [q_norm.Weight, k_norm.Weight];

    /// <summary>The modulation vectors (N, D) each: shift, scale[, gate, shift, scale, gate for the MLP].</summary>
    public Tensor[] Modulations(Tensor c) => adaLN_modulation.forward(c).chunk(PreOnly ? 2 : 6, 1);

    /// <summary>(N, L, D) tokens → q (null for a pre-only stream), k, v as (N, H, L, Dh), q and k RMS-normalised per head.</summary>
    public (Tensor? q, Tensor k, Tensor v) QueryKeyValue(Tensor x, Tensor[] m)
    {
        using var scope = torch.NewDisposeScope();
        long n = x.shape[0], l = x.shape[1], d = x.shape[2];
        var h = Modulation.Modulate(norm1.forward(x), m[0], m[1]);
        int parts = PreOnly ? 2 : 3;
        var split = (PreOnly ? kv! : qkv!).forward(h).reshape(n, l, parts, NumHeads, d / NumHeads).permute(2, 0, 3, 1, 4).unbind(0);
        var q = PreOnly ? null : q_norm!.forward(split[0]);
        var k = k_norm.forward(split[parts - 2]);
        return (q?.MoveToOuterDisposeScope(), k.MoveToOuterDisposeScope(), split[parts - 1].MoveToOuterDisposeScope());
    }

    /// <summary>The gated residual updates after attention: x + gate·proj(attended), then + gate·mlp(modulated norm).</summary>
    /// <param name="x">(N, L, D) the stream's input tokens.</param>
    /// <param name="attended">(N, L, D) this stream's rows of the joint attention output (heads merged).</param>
    /// <param name="m">The modulations from <see cref="Modulations"/>.</param>
    public Tensor Update(Tensor x, Tensor attended, Tensor[] m)
    {
        if (PreOnly) throw new InvalidOperationException("a pre-only stream has no output");
        using var scope = torch.NewDisposeScope();
        var h = x + m[2].unsqueeze(1) * proj!.forward(attended);
        var output = h + m[5].unsqueeze(1) * mlp!.forward(Modulation.Modulate(norm2!.forward(h), m[3], m[4]));
        return output.MoveToOuterDisposeScope();
    }
}
