using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Transformers;

/// <summary>
/// MM-DiT's joint-attention block (Stable Diffusion 3, FLUX): image tokens (<c>x</c>) and condition tokens
/// (<c>context</c>: the text tokens, or one class token) each have their own weights (<see cref="JointStream"/>), but
/// their queries, keys and values are concatenated along the sequence and attend once, so every token sees both
/// modalities. Both streams are modulated (adaLN) by c = time + pooled condition embedding. Padded condition tokens are
/// masked as keys, so they never reach a real token. The last block's context stream is pre-only (as SD3): it returns
/// no context.
/// </summary>
internal sealed class JointAttentionBlock : nn.Module
{
    private readonly JointStream x;
    private readonly JointStream context;

    public JointAttentionBlock(int hiddenSize, int numHeads, int mlpHidden, bool contextPreOnly) : base(nameof(JointAttentionBlock))
    {
        x = new JointStream(hiddenSize, numHeads, mlpHidden, preOnly: false);
        context = new JointStream(hiddenSize, numHeads, mlpHidden, preOnly: contextPreOnly);
        RegisterComponents();
    }

    /// <summary>The image stream and the condition stream.</summary>
    public IEnumerable<JointStream> Streams => [x, context];

    /// <param name="image">(N, T, D) patch tokens.</param>
    /// <param name="cond">(N, L, D) condition tokens.</param>
    /// <param name="c">(N, D) conditioning vector for the modulation.</param>
    /// <param name="condMask">(N, L) boolean, true = real condition token; null = all real.</param>
    /// <returns>The new patch tokens and the new condition tokens (null when the context stream is pre-only).</returns>
    public (Tensor image, Tensor? cond) Forward(Tensor image, Tensor cond, Tensor c, Tensor? condMask)
    {
        using var scope = torch.NewDisposeScope();
        long n = image.shape[0], t = image.shape[1], l = cond.shape[1], d = image.shape[2];
        var mx = x.Modulations(c);
        var mc = context.Modulations(c);
        var (qx, kx, vx) = x.QueryKeyValue(image, mx);
        var (qc, kc, vc) = context.QueryKeyValue(cond, mc);
        // One sequence [context, image] (SD3's order); keys of padded context tokens are hidden from every query.
        // A pre-only context asks no queries: only the image rows of the attention are computed.
        var q = qc is null ? qx! : torch.cat([qc, qx!], 2);
        long rows = qc is null ? t : l + t;
        var k = torch.cat([kc, kx], 2);
        var v = torch.cat([vc, vx], 2);
        Tensor? mask = condMask is null ? null : torch.cat([
            condMask.to(ScalarType.Bool),
            torch.ones(n, t, dtype: ScalarType.Bool, device: image.device)], 1).reshape(n, 1, 1, l + t);
        var attended = Layers.DotProductAttention.Compute(q, k, v, mask).transpose(1, 2).reshape(n, rows, d);
        var newImage = x.Update(image, attended.narrow(1, rows - t, t), mx);
        Tensor? newCond = context.PreOnly ? null : context.Update(cond, attended.narrow(1, 0, l), mc);
        return (newImage.MoveToOuterDisposeScope(), newCond?.MoveToOuterDisposeScope());
    }
}
