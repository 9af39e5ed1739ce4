using LatentDiffusion.Diffusion;
using LatentDiffusion.Layers;
using LatentDiffusion.Text;

namespace LatentDiffusion.Transformers;

/// <summary>
/// Parameters and forward FLOPs per image of a <see cref="DiffusionTransformer"/>, counted from its config: the layers
/// are walked in the order <see cref="DiffusionTransformer"/>'s constructor builds them, with the token counts its
/// forward pass runs them on (see <see cref="ModelCost"/> for the convention).
/// </summary>
public static class TransformerCost
{
    /// <summary>The cost of the network <paramref name="config"/> builds.</summary>
    public static ModelCost Of(TransformerConfig config)
    {
        config.Validate();
        var tally = new CostTally();
        int d = config.HiddenSize, p = config.PatchSize;
        long patches = config.NumPatches, cond = config.ConditionTokens;

        // Patch embedding: a p×p convolution with stride p, one output position per patch; pos_embed is a (frozen) parameter.
        tally.Conv(patches, config.InChannels, d, p);
        tally.Weights(patches * d);
        // Timestep MLP on one sinusoidal vector per image.
        tally.Linear(1, TimestepEmbedder.DefaultFrequencyEmbeddingSize, d);
        tally.Linear(1, d, d);
        // Condition tables: lookups, no FLOPs.
        if (config.Text is { } text) TextEncoder.Count(tally, text, d);                    // caption tables (and encoder layers)
        else tally.Weights((config.NumClasses + (config.ClassDropoutProb > 0 ? 1 : 0)) * (long)d);           // labels (+ the null class)

        switch (config.Block)
        {
            case BlockType.InContext:
            {
                // One sequence [time token, condition token(s), patch tokens].
                long tokens = 1 + cond + patches;
                tally.Weights((1 + cond) * d);                                          // extra_pos_embed
                for (int i = 0; i < DiffusionTransformer.InContextBlockCount(config); i++)
                {
                    tally.Weights(2 * 2 * d);                                           // norm1, norm2 (affine)
                    SelfAttention(tally, tokens, d);
                    Mlp(tally, tokens, d, config.MlpHidden);
                }
                if (config.LongSkips)
                    for (int i = 0; i < config.Depth / 2; i++) tally.Linear(tokens, 2 * d, d);
                tally.Weights(2 * d);                                                   // norm_final (affine)
                tally.Linear(patches, d, (long)p * p * config.OutChannels);             // only the patch tokens are decoded
                break;
            }
            case BlockType.AdaLnZero:
                for (int i = 0; i < config.Depth; i++)
                {
                    tally.Linear(1, d, 6 * d);                                          // adaLN_modulation, once per image
                    SelfAttention(tally, patches, d);
                    Mlp(tally, patches, d, config.MlpHidden);
                }
                AdaLnFinalLayer(tally, config, patches);
                break;
            case BlockType.CrossAttention:
            {
                long context = 1 + cond;                                                // [time token, condition token(s)]
                for (int i = 0; i < config.Depth; i++)
                {
                    tally.Weights(3 * 2 * d);                                           // norm1, norm_cross, norm2 (affine)
                    SelfAttention(tally, patches, d);
                    tally.Linear(patches, d, d);                                        // cross_attn.q
                    tally.Linear(context, d, 2 * d);                                    // cross_attn.kv
                    tally.Attention(patches, context, d);
                    tally.Linear(patches, d, d);                                        // cross_attn.proj
                    Mlp(tally, patches, d, config.MlpHidden);
                }
                tally.Weights(2 * d);                                                   // norm_final (affine)
                tally.Linear(patches, d, (long)p * p * config.OutChannels);
                break;
            }
            case BlockType.JointAttention:
                for (int i = 0; i < config.Depth; i++)
                {
                    bool contextPreOnly = i == config.Depth - 1;                        // as DiffusionTransformer: the last context stream only gives keys and values
                    JointStream(tally, patches, d, config.NumHeads, config.MlpHidden, preOnly: false);
                    JointStream(tally, cond, d, config.NumHeads, config.MlpHidden, contextPreOnly);
                    // One attention over [context, image]; a pre-only context asks no queries.
                    tally.Attention(contextPreOnly ? patches : patches + cond, patches + cond, d);
                }
                AdaLnFinalLayer(tally, config, patches);
                break;
            default:
                throw new LdmException($"unknown block type {config.Block}; use in_context, adaln_zero, cross_attention or joint_attention.");
        }
        return tally.ToCost();
    }

    /// <summary>timm's Attention: qkv, QKᵀ and AV over all tokens, proj.</summary>
    static void SelfAttention(CostTally tally, long tokens, int d)
    {
        tally.Linear(tokens, d, 3 * d);
        tally.Attention(tokens, tokens, d);
        tally.Linear(tokens, d, d);
    }

    /// <summary>fc1, GELU, fc2.</summary>
    static void Mlp(CostTally tally, long tokens, int d, int hidden)
    {
        tally.Linear(tokens, d, hidden);
        tally.Linear(tokens, hidden, d);
    }

    /// <summary>DiT's FinalLayer: adaLN_modulation (shift, scale) once per image, then linear on the patch tokens.</summary>
    static void AdaLnFinalLayer(CostTally tally, TransformerConfig config, long patches)
    {
        int d = config.HiddenSize;
        tally.Linear(1, d, 2 * d);
        tally.Linear(patches, d, (long)config.PatchSize * config.PatchSize * config.OutChannels);
    }

    /// <summary>One modality's weights of an MM-DiT block (the attention products are counted by the caller).</summary>
    static void JointStream(CostTally tally, long tokens, int d, int heads, int mlpHidden, bool preOnly)
    {
        int headDim = d / heads;
        if (preOnly)
        {
            tally.Linear(1, d, 2 * d);                                                  // adaLN_modulation: shift, scale
            tally.Linear(tokens, d, 2 * d);                                             // kv
            tally.Weights(headDim);                                                     // k_norm
            return;
        }
        tally.Linear(1, d, 6 * d);                                                      // adaLN_modulation: shift, scale, gate ×2
        tally.Linear(tokens, d, 3 * d);                                                 // qkv
        tally.Weights(2 * headDim);                                                     // q_norm, k_norm
        tally.Linear(tokens, d, d);                                                     // proj
        Mlp(tally, tokens, d, mlpHidden);
    }
}
