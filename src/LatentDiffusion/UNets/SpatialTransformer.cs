using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LatentDiffusion.UNets;

/// <summary>
/// The official <c>SpatialTransformer</c>: the feature map becomes tokens (<c>norm</c>, 1×1 conv <c>proj_in</c>), runs
/// through <c>transformer_blocks</c> (self-attention, cross-attention on the context, gated feed-forward) and is projected
/// back (<c>proj_out</c>, zero-initialised) onto the residual. Without a context the cross-attention attends to the
/// tokens themselves, as the official code.
/// </summary>
internal sealed class SpatialTransformer : nn.Module<Tensor, Tensor?, Tensor?, Tensor>
{
    readonly GroupNorm32 norm;
    readonly Conv2d proj_in, proj_out;
    readonly ModuleList<BasicTransformerBlock> transformer_blocks;

    public SpatialTransformer(int channels, int heads, int headDim, int depth, int? contextDim) : base(nameof(SpatialTransformer))
    {
        int inner = heads * headDim;
        norm = new GroupNorm32(channels, eps: 1e-6, inFloat32: false);
        proj_in = nn.Conv2d(channels, inner, kernel_size: 1);
        transformer_blocks = nn.ModuleList(Enumerable.Range(0, depth).Select(_ => new BasicTransformerBlock(inner, heads, headDim, contextDim)).ToArray());
        proj_out = nn.Conv2d(inner, channels, kernel_size: 1);
        RegisterComponents();
    }

    /// <summary>The output projection (zero-initialised).</summary>
    public Conv2d ProjOut => proj_out;

    /// <param name="x">(N, C, H, W) features.</param>
    /// <param name="context">(N, L, context_dim), or null for self-attention only.</param>
    /// <param name="mask">(N, L) bool, true = real context token; null = all real.</param>
    public override Tensor forward(Tensor x, Tensor? context, Tensor? mask)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], h = x.shape[2], w = x.shape[3];
        var tokens = proj_in.forward(norm.forward(x));
        long inner = tokens.shape[1];
        tokens = tokens.reshape(b, inner, h * w).transpose(1, 2);              // (N, HW, inner)
        foreach (var block in transformer_blocks) tokens = block.forward(tokens, context, mask);
        var map = tokens.transpose(1, 2).reshape(b, inner, h, w);
        return (proj_out.forward(map) + x).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// One Transformer block of the SpatialTransformer (pre-norm): <c>attn1</c> self-attention after <c>norm1</c>,
/// <c>attn2</c> cross-attention on the context after <c>norm2</c>, <c>ff</c> GEGLU feed-forward after <c>norm3</c>.
/// </summary>
internal sealed class BasicTransformerBlock : nn.Module<Tensor, Tensor?, Tensor?, Tensor>
{
    readonly CrossAttention attn1, attn2;
    readonly FeedForward ff;
    readonly LayerNorm norm1, norm2, norm3;

    public BasicTransformerBlock(int dim, int heads, int headDim, int? contextDim) : base(nameof(BasicTransformerBlock))
    {
        attn1 = new CrossAttention(dim, dim, heads, headDim);
        ff = new FeedForward(dim, 4);
        attn2 = new CrossAttention(dim, contextDim ?? dim, heads, headDim);
        norm1 = nn.LayerNorm(dim);
        norm2 = nn.LayerNorm(dim);
        norm3 = nn.LayerNorm(dim);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x, Tensor? context, Tensor? mask)
    {
        using var scope = NewDisposeScope();
        x = attn1.forward(norm1.forward(x), null, null) + x;
        x = attn2.forward(norm2.forward(x), context, context is null ? null : mask) + x;
        x = ff.forward(norm3.forward(x)) + x;
        return x.MoveToOuterDisposeScope();
    }
}

/// <summary>
/// The official multi-head <c>CrossAttention</c>: bias-free <c>to_q</c>, <c>to_k</c>, <c>to_v</c>, output
/// <c>to_out.0</c> (Linear with bias; <c>to_out.1</c> is a parameter-free dropout). softmax(q kᵀ · d^-1/2) v; masked
/// context tokens get the most negative finite score, as the official mask.
/// </summary>
internal sealed class CrossAttention : nn.Module<Tensor, Tensor?, Tensor?, Tensor>
{
    readonly Linear to_q, to_k, to_v;
    readonly Sequential to_out;
    readonly int heads;
    readonly double scale;

    public CrossAttention(int queryDim, int contextDim, int heads, int headDim) : base(nameof(CrossAttention))
    {
        int inner = heads * headDim;
        this.heads = heads;
        scale = 1 / Math.Sqrt(headDim);
        to_q = nn.Linear(queryDim, inner, hasBias: false);
        to_k = nn.Linear(contextDim, inner, hasBias: false);
        to_v = nn.Linear(contextDim, inner, hasBias: false);
        to_out = nn.Sequential(("0", nn.Linear(inner, queryDim)), ("1", nn.Dropout(0)));
        RegisterComponents();
    }

    /// <param name="x">(N, T, query_dim) tokens.</param>
    /// <param name="context">(N, L, context_dim), or null to attend to <paramref name="x"/>.</param>
    /// <param name="mask">(N, L) bool, true = attend; null = all.</param>
    public override Tensor forward(Tensor x, Tensor? context, Tensor? mask)
    {
        using var scope = NewDisposeScope();
        var ctx = context ?? x;
        var q = SplitHeads(to_q.forward(x));
        var k = SplitHeads(to_k.forward(ctx));
        var v = SplitHeads(to_v.forward(ctx));
        var sim = q.matmul(k.transpose(2, 3)) * scale;                        // (N, H, T, L)
        if (mask is not null)
        {
            var keep = mask.to(ScalarType.Bool).to(sim.device).unsqueeze(1).unsqueeze(1);
            sim = sim.masked_fill(keep.logical_not(), MostNegative(sim.dtype));
        }
        var o = sim.softmax(-1).matmul(v);                                    // (N, H, T, d)
        o = o.transpose(1, 2).reshape(x.shape[0], x.shape[1], -1);
        return to_out.forward(o).MoveToOuterDisposeScope();
    }

    Tensor SplitHeads(Tensor t) => t.reshape(t.shape[0], t.shape[1], heads, -1).transpose(1, 2);

    static double MostNegative(ScalarType dtype) => dtype switch
    {
        ScalarType.Float64 => double.MinValue,
        ScalarType.Float16 => -65504.0,
        ScalarType.BFloat16 => -3.3895313892515355e38,
        _ => float.MinValue,
    };
}

/// <summary>
/// The official gated feed-forward: <c>net.0.proj</c> Linear(dim, 2·inner) split into value and gate,
/// value · GELU(gate) (exact GELU), dropout (<c>net.1</c>), <c>net.2</c> Linear(inner, dim).
/// </summary>
internal sealed class FeedForward : nn.Module<Tensor, Tensor>
{
    readonly Sequential net;

    public FeedForward(int dim, int mult) : base(nameof(FeedForward))
    {
        int inner = dim * mult;
        net = nn.Sequential(("0", new Geglu(dim, inner)), ("1", nn.Dropout(0)), ("2", nn.Linear(inner, dim)));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => net.forward(x);
}

/// <summary>GEGLU: <c>proj</c> Linear(in, 2·out) → value · GELU(gate).</summary>
internal sealed class Geglu : nn.Module<Tensor, Tensor>
{
    readonly Linear proj;

    public Geglu(int dimIn, int dimOut) : base(nameof(Geglu))
    {
        proj = nn.Linear(dimIn, dimOut * 2);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var parts = proj.forward(x).chunk(2, -1);
        return (parts[0] * nn.functional.gelu(parts[1])).MoveToOuterDisposeScope();
    }
}
