using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LatentDiffusion.Layers;

/// <summary>
/// Multi-head self-attention with timm's parameter names (<c>qkv</c>, <c>proj</c>), as used by DiT:
/// softmax(q kᵀ / sqrt(head_dim)) v through <c>scaled_dot_product_attention</c>.
/// </summary>
internal sealed class Attention : nn.Module<Tensor, Tensor?, Tensor>
{
    private readonly Linear qkv;
    private readonly Linear proj;

    public int NumHeads { get; }

    public Attention(int dim, int numHeads, bool qkvBias = true) : base(nameof(Attention))
    {
        if (dim % numHeads != 0) throw new ArgumentException($"dim {dim} is not divisible by {numHeads} heads");
        NumHeads = numHeads;
        qkv = nn.Linear(dim, 3 * dim, hasBias: qkvBias);
        proj = nn.Linear(dim, dim);
        RegisterComponents();
    }

    /// <summary>The output projection; zero-initialised by models that want a block to start as the identity.</summary>
    public Linear Proj => proj;

    /// <param name="x">(N, L, D) tokens.</param>
    /// <param name="keyMask">Optional (N, L) boolean key-padding mask, true = this token may be attended to.</param>
    public override Tensor forward(Tensor x, Tensor? keyMask)
    {
        using var scope = torch.NewDisposeScope();
        long n = x.shape[0], l = x.shape[1], d = x.shape[2];
        // (N, L, 3, H, Dh) -> (3, N, H, L, Dh): one matmul for q, k and v, as timm does.
        var parts = qkv.forward(x).reshape(n, l, 3, NumHeads, d / NumHeads).permute(2, 0, 3, 1, 4).unbind(0);
        var mask = keyMask?.reshape(n, 1, 1, l);
        var attended = DotProductAttention.Compute(parts[0], parts[1], parts[2], mask);
        return proj.forward(attended.transpose(1, 2).reshape(n, l, d)).MoveToOuterDisposeScope();
    }

    /// <summary>Self-attention over every token.</summary>
    public Tensor forward(Tensor x) => forward(x, null);
}
