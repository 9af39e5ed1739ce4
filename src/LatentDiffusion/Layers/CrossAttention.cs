using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LatentDiffusion.Layers;

/// <summary>
/// Multi-head cross-attention: queries from the tokens (<c>q</c>), keys and values from a context sequence
/// (<c>kv</c>, one matmul), output projection <c>proj</c>. Used by the cross-attention Transformer block.
/// </summary>
internal sealed class CrossAttention : nn.Module<Tensor, Tensor, Tensor?, Tensor>
{
    private readonly Linear q;
    private readonly Linear kv;
    private readonly Linear proj;

    public int NumHeads { get; }

    public CrossAttention(int dim, int contextDim, int numHeads) : base(nameof(CrossAttention))
    {
        if (dim % numHeads != 0) throw new ArgumentException($"dim {dim} is not divisible by {numHeads} heads");
        NumHeads = numHeads;
        q = nn.Linear(dim, dim);
        kv = nn.Linear(contextDim, 2 * dim);
        proj = nn.Linear(dim, dim);
        RegisterComponents();
    }

    public Linear Proj => proj;

    /// <param name="x">(N, L, D) query tokens.</param>
    /// <param name="context">(N, S, C) context tokens.</param>
    /// <param name="contextMask">Optional (N, S) boolean mask, true = attend to this context token.</param>
    public override Tensor forward(Tensor x, Tensor context, Tensor? contextMask)
    {
        using var scope = torch.NewDisposeScope();
        long n = x.shape[0], l = x.shape[1], d = x.shape[2], s = context.shape[1];
        long dh = d / NumHeads;
        var query = q.forward(x).reshape(n, l, NumHeads, dh).transpose(1, 2);
        var keyValue = kv.forward(context).reshape(n, s, 2, NumHeads, dh).permute(2, 0, 3, 1, 4).unbind(0);
        var mask = contextMask?.reshape(n, 1, 1, s);
        var attended = DotProductAttention.Compute(query, keyValue[0], keyValue[1], mask);
        return proj.forward(attended.transpose(1, 2).reshape(n, l, d)).MoveToOuterDisposeScope();
    }
}
