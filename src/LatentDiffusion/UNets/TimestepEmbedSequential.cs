using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.UNets;

/// <summary>
/// One entry of the UNet's <c>input_blocks</c> / <c>middle_block</c> / <c>output_blocks</c>: layers named <c>0</c>,
/// <c>1</c>, ... run in order, each given what it needs — residual blocks the time embedding, spatial transformers the
/// context — as the official <c>TimestepEmbedSequential</c>.
/// </summary>
internal sealed class TimestepEmbedSequential : nn.Module
{
    readonly List<nn.Module> layers = new();

    public TimestepEmbedSequential(params nn.Module[] layers) : base(nameof(TimestepEmbedSequential))
    {
        for (int i = 0; i < layers.Length; i++)
        {
            register_module(i.ToString(System.Globalization.CultureInfo.InvariantCulture), layers[i]);
            this.layers.Add(layers[i]);
        }
    }

    /// <summary>The layers in order.</summary>
    public IReadOnlyList<nn.Module> Layers => layers;

    /// <param name="x">(N, C, H, W) features.</param>
    /// <param name="emb">(N, time_embed_dim) time (and label) embedding.</param>
    /// <param name="context">(N, L, context_dim) cross-attention context, or null.</param>
    /// <param name="mask">(N, L) bool mask of the context, or null.</param>
    /// <param name="upsampleTo">When this entry ends with an up-sampling layer, the (H, W) it brings the features to
    /// (the size of the skip they meet next); null doubles them. Ignored by entries that do not up-sample.</param>
    public Tensor forward(Tensor x, Tensor emb, Tensor? context, Tensor? mask, long[]? upsampleTo = null)
    {
        using var scope = NewDisposeScope();
        foreach (var layer in layers)
        {
            x = layer switch
            {
                ResBlock res => res.forward(x, emb, upsampleTo),
                Upsample up when upsampleTo is not null => up.forward(x, upsampleTo),
                SpatialTransformer st => st.forward(x, context, mask),
                nn.Module<Tensor, Tensor> plain => plain.forward(x),
                _ => throw new InvalidOperationException($"unexpected UNet layer {layer.GetType().Name}"),
            };
        }
        return x.MoveToOuterDisposeScope();
    }
}
