using LatentDiffusion.Diffusion;
using LatentDiffusion.Text;

namespace LatentDiffusion.UNets;

/// <summary>
/// Parameters and forward FLOPs per image of a <see cref="UNetModel"/>, counted from its config: the levels, blocks and
/// skip widths are walked as <see cref="UNetModel"/>'s constructor builds them, each layer at the resolution the
/// forward pass runs it at (see <see cref="ModelCost"/> for the convention).
/// </summary>
public static class UNetCost
{
    /// <summary>
    /// Context tokens assumed for a model fed a cross-attention context directly (<c>context_dim</c> without
    /// <c>text</c>): 77, the caption length of the LDM text-to-image models and Stable Diffusion. A text model uses its
    /// <c>text.max_tokens</c>.
    /// </summary>
    public const int DefaultContextTokens = 77;

    /// <summary>The cost of the network <paramref name="config"/> builds.</summary>
    /// <param name="config">The UNet.</param>
    /// <param name="contextTokens">Tokens of the cross-attention context (null: text.max_tokens, else <see cref="DefaultContextTokens"/>).</param>
    public static ModelCost Of(UNetConfig config, int? contextTokens = null)
    {
        config.Validate();
        if (contextTokens is < 1)
            throw new LdmOptionException(nameof(UNetCost), "ContextTokens", contextTokens, "be at least 1", "the caption length the model is run with");
        var tally = new CostTally();
        int mc = config.ModelChannels, emb = config.TimeEmbedDim;
        bool ss = config.UseScaleShiftNorm;
        long side = config.ImageSize;
        int context = contextTokens ?? config.Text?.MaxTokens ?? DefaultContextTokens;

        // Timestep MLP on one sinusoidal vector per image; condition tables are lookups.
        tally.Linear(1, mc, emb);
        tally.Linear(1, emb, emb);
        if (config.NumClasses > 0) tally.Weights((long)config.LabelTableSize * emb);
        if (config.Text is { } text) TextEncoder.Count(tally, text, config.ContextDim!.Value);   // caption tables (and encoder layers)

        void Attention(long at, int ch)
        {
            if (config.UseSpatialTransformer) SpatialTransformer(tally, at, ch, config.HeadsAt(ch), config.TransformerDepth, config.ContextDim, context);
            else AttentionBlock(tally, at, ch);
        }

        // The way down: stem, then per level num_res_blocks (ResBlock [+ attention]) and a downsample between levels;
        // the width of every entry's output is kept for the skip it feeds on the way up.
        tally.Conv(side * side, config.InChannels, mc, 3);
        var skips = new Stack<int>();
        skips.Push(mc);
        int ch = mc, ds = 1;
        for (int level = 0; level < config.ChannelMult.Length; level++)
        {
            long at = side / ds;
            for (int i = 0; i < config.NumResBlocks; i++)
            {
                int outCh = mc * config.ChannelMult[level];
                ResBlock(tally, at, ch, outCh, emb, ss, Resample.None);
                ch = outCh;
                if (config.AttentionResolutions.Contains(ds)) Attention(at, ch);
                skips.Push(ch);
            }
            if (level != config.ChannelMult.Length - 1)
            {
                if (config.ResblockUpdown) ResBlock(tally, at, ch, ch, emb, ss, Resample.Down);
                else tally.Conv(at / 2 * (at / 2), ch, ch, 3);                           // stride-2 conv: output positions at half the side
                skips.Push(ch);
                ds *= 2;
            }
        }
        long bottom = side / ds;
        ResBlock(tally, bottom, ch, ch, emb, ss, Resample.None);
        Attention(bottom, ch);
        ResBlock(tally, bottom, ch, ch, emb, ss, Resample.None);

        // The way up: per level num_res_blocks + 1 ResBlocks on [h, skip] (+ attention), an upsample ending each level but the first.
        for (int level = config.ChannelMult.Length - 1; level >= 0; level--)
        {
            long at = side / ds;
            for (int i = 0; i <= config.NumResBlocks; i++)
            {
                int outCh = mc * config.ChannelMult[level];
                ResBlock(tally, at, ch + skips.Pop(), outCh, emb, ss, Resample.None);
                ch = outCh;
                if (config.AttentionResolutions.Contains(ds)) Attention(at, ch);
                if (level > 0 && i == config.NumResBlocks)
                {
                    if (config.ResblockUpdown) ResBlock(tally, at, ch, ch, emb, ss, Resample.Up);
                    else tally.Conv(2 * at * (2 * at), ch, ch, 3);                      // nearest ×2, then a 3×3 conv at the doubled side
                    ds /= 2;
                }
            }
        }
        tally.Weights(2 * mc);                                                            // out.0 GroupNorm
        tally.Conv(side * side, mc, config.OutChannels, 3);
        return tally.ToCost();
    }

    enum Resample { None, Down, Up }

    /// <summary>ResBlock at input side <paramref name="at"/>: norm, conv, the embedding projection (once per image), norm,
    /// conv, and a 1×1 skip conv when the width changes. A resampling block resamples before its first conv, so both
    /// convs run at the new side.</summary>
    static void ResBlock(CostTally tally, long at, int inCh, int outCh, int emb, bool scaleShift, Resample resample)
    {
        long side = resample switch { Resample.Down => at / 2, Resample.Up => at * 2, _ => at };
        long pixels = side * side;
        tally.Weights(2 * inCh);                                                          // in_layers.0 GroupNorm
        tally.Conv(pixels, inCh, outCh, 3);
        tally.Linear(1, emb, scaleShift ? 2 * outCh : outCh);                            // emb_layers.1
        tally.Weights(2 * outCh);                                                         // out_layers.0 GroupNorm
        tally.Conv(pixels, outCh, outCh, 3);
        if (outCh != inCh) tally.Conv(pixels, inCh, outCh, 1);                          // skip_connection
    }

    /// <summary>The legacy self-attention block over the <paramref name="at"/>² pixels: norm, qkv (1×1 Conv1d), QKᵀ and AV, proj_out.</summary>
    static void AttentionBlock(CostTally tally, long at, int ch)
    {
        long tokens = at * at;
        tally.Weights(2 * ch);
        tally.Conv(tokens, ch, 3 * ch, 1);
        tally.Attention(tokens, tokens, ch);
        tally.Conv(tokens, ch, ch, 1);
    }

    /// <summary>SpatialTransformer over the <paramref name="at"/>² pixels: norm, proj_in, per block self-attention,
    /// cross-attention on <paramref name="contextTokens"/> tokens of width context_dim and the GEGLU feed-forward, proj_out.</summary>
    static void SpatialTransformer(CostTally tally, long at, int ch, int heads, int depth, int? contextDim, int contextTokens)
    {
        long tokens = at * at;
        int inner = heads * (ch / heads);
        int cd = contextDim ?? inner;
        tally.Weights(2 * ch);                                                            // norm
        tally.Conv(tokens, ch, inner, 1);                                                 // proj_in
        for (int b = 0; b < depth; b++)
        {
            tally.Weights(3 * 2 * inner);                                                 // norm1, norm2, norm3
            // attn1: bias-free to_q, to_k, to_v on the pixels, to_out with bias.
            tally.Linear(tokens, inner, inner, bias: false);
            tally.Linear(tokens, inner, inner, bias: false);
            tally.Linear(tokens, inner, inner, bias: false);
            tally.Attention(tokens, tokens, inner);
            tally.Linear(tokens, inner, inner);
            // attn2: queries from the pixels, keys and values from the context.
            tally.Linear(tokens, inner, inner, bias: false);
            tally.Linear(contextTokens, cd, inner, bias: false);
            tally.Linear(contextTokens, cd, inner, bias: false);
            tally.Attention(tokens, contextTokens, inner);
            tally.Linear(tokens, inner, inner);
            // ff: GEGLU proj to 2 × 4·inner, then 4·inner → inner.
            tally.Linear(tokens, inner, 8 * inner);
            tally.Linear(tokens, 4 * inner, inner);
        }
        tally.Conv(tokens, inner, ch, 1);                                                 // proj_out
    }
}
