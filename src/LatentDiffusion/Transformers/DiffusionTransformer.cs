using LatentDiffusion.Diffusion;
using LatentDiffusion.Layers;
using LatentDiffusion.Text;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LatentDiffusion.Transformers;

/// <summary>
/// The diffusion Transformer: patch tokens of a latent image, conditioned on the timestep and a class, predict the
/// noise (and, with learn_sigma, the variance interpolation) for every latent pixel. One model, four block variants
/// (<see cref="BlockType"/>); with <see cref="BlockType.AdaLnZero"/> it is facebookresearch/DiT's <c>DiT</c>, with
/// identical state-dict keys, so official checkpoints load unchanged.
/// forward(x (N, C, H, W) float, t (N) timesteps int64 or float, y (N) int64 class ids incl. the null id) → (N, out_channels, H, W) float32.
/// A text model (config <c>text</c> set) has a caption encoder (<c>text_embedder</c>: token and position embeddings) instead of the label
/// table and runs through <see cref="ForwardText"/>.
/// </summary>
public sealed class DiffusionTransformer : DenoiserNetwork
{
    private readonly Parameter pos_embed;
    /// <summary>In-context only: learned position embeddings of the extra tokens [time token, condition token(s)].</summary>
    private readonly Parameter? extra_pos_embed;
    private readonly PatchEmbed x_embedder;
    private readonly TimestepEmbedder t_embedder;
    /// <summary>Class models only: the label table (with the null class).</summary>
    private readonly LabelEmbedder? y_embedder;
    /// <summary>Text models only: token and position embeddings of the caption and the learned null token.</summary>
    private readonly TextEncoder? text_embedder;
    private readonly ModuleList<nn.Module> blocks;
    /// <summary>U-ViT long skips: one Linear(2D, D) per output-half block.</summary>
    private readonly ModuleList<Linear>? skip_linears;
    private readonly nn.Module final_layer;

    /// <summary>The architecture this model was built with (validated).</summary>
    public TransformerConfig Config { get; }
    /// <summary>The same config as the backbone's general description.</summary>
    public override IBackboneConfig Backbone => Config;

    /// <summary>Number of condition tokens the in-context sequence holds for a class label.</summary>
    public const int ClassConditionTokens = 1;

    /// <summary>
    /// Debugging hook: called with (name, activation) for the official intermediates x_embedder (before pos_embed),
    /// t_embedder, y_embedder, blocks.i and final_layer (before unpatchify). The tensor belongs to the forward's
    /// dispose scope: copy it (clone + DetachFromDisposeScope) to keep it.
    /// </summary>
    public Action<string, Tensor>? DebugTap { get; set; }

    /// <summary>Builds the model and initialises its weights deterministically from <paramref name="seed"/>.</summary>
    public DiffusionTransformer(TransformerConfig config, long seed = 0) : base(nameof(DiffusionTransformer))
    {
        Config = config.Validate();
        int d = config.HiddenSize;
        x_embedder = new PatchEmbed(config.InChannels, d, config.PatchSize);
        t_embedder = new TimestepEmbedder(d);
        if (config.Text is { } text) text_embedder = new TextEncoder(text, d);
        else y_embedder = new LabelEmbedder(config.NumClasses, d, config.ClassDropoutProb);
        // DiT keeps the sin-cos table as a frozen parameter (so it is in the state dict); learned_pos_embed trains it.
        pos_embed = new Parameter(torch.zeros(1, config.NumPatches, d), requires_grad: config.LearnedPosEmbed);

        var blockList = new List<nn.Module>();
        switch (config.Block)
        {
            case BlockType.AdaLnZero:
                for (int i = 0; i < config.Depth; i++) blockList.Add(new AdaLnZeroBlock(d, config.NumHeads, config.MlpHidden));
                final_layer = new FinalLayer(d, config.PatchSize, config.OutChannels);
                break;
            case BlockType.InContext:
                extra_pos_embed = new Parameter(torch.zeros(1, 1 + config.ConditionTokens, d), requires_grad: true);
                for (int i = 0; i < InContextBlockCount(config); i++) blockList.Add(new InContextBlock(d, config.NumHeads, config.MlpHidden));
                if (config.LongSkips)
                    skip_linears = nn.ModuleList(Enumerable.Range(0, config.Depth / 2).Select(_ => nn.Linear(2 * d, d)).ToArray());
                final_layer = new InContextFinalLayer(d, config.PatchSize, config.OutChannels);
                break;
            case BlockType.CrossAttention:
                for (int i = 0; i < config.Depth; i++) blockList.Add(new CrossAttentionBlock(d, config.NumHeads, config.MlpHidden));
                final_layer = new InContextFinalLayer(d, config.PatchSize, config.OutChannels);
                break;
            case BlockType.JointAttention:
                // The last block's context output is never read, so its context stream is pre-only (as SD3).
                for (int i = 0; i < config.Depth; i++) blockList.Add(new JointAttentionBlock(d, config.NumHeads, config.MlpHidden, contextPreOnly: i == config.Depth - 1));
                final_layer = new FinalLayer(d, config.PatchSize, config.OutChannels);
                break;
            default:
                throw new LdmException($"unknown block type {config.Block}; use in_context, adaln_zero, cross_attention or joint_attention.");
        }
        blocks = nn.ModuleList(blockList.ToArray());
        RegisterComponents();
        InitializeWeights(seed);
    }

    /// <summary>
    /// Blocks of the in-context model. With U-ViT long skips (as U-ViT): depth/2 input blocks, one middle block and
    /// depth/2 output blocks, so an even depth gets one extra (middle) block.
    /// </summary>
    public static int InContextBlockCount(TransformerConfig config) =>
        config.LongSkips ? 2 * (config.Depth / 2) + 1 : config.Depth;

    Tensor PosEmbed => get_parameter("pos_embed")!;
    Tensor ExtraPosEmbed => get_parameter("extra_pos_embed")!;

    /// <summary>The dtype of the weights (float32, or bfloat16 after <c>.to(ScalarType.BFloat16)</c>).</summary>
    public override ScalarType ParameterDtype => x_embedder.Proj.weight!.dtype;

    /// <summary>The id of the null (unconditional) class used for classifier-free guidance.</summary>
    public int NullClass => Config.NullClass;

    /// <summary>Class-conditional forward: y (N) int64 class ids (the null id allowed). Returns float32.</summary>
    public override Tensor forward(Tensor x, Tensor t, Tensor y)
    {
        if (y_embedder is null)
            throw new LdmException("this is a text-conditioned model, it takes captions, not class labels; pass token ids to ForwardText.");
        CheckBatch(x, t, y.shape[0]);
        using var scope = torch.NewDisposeScope();
        // Draws made by the caller (the trainer) replace the embedder's own, with the same comparison.
        var drops = training && y_embedder.DropoutProb > 0 && LabelDropoutDraws is { } u ? (u < y_embedder.DropoutProb).to(ScalarType.Int64) : null;
        var cond = y_embedder.forward(y.to(x.device), training, LabelDropoutGenerator, drops);   // (N, D)
        Tap("y_embedder", cond);
        return ForwardTokens(x, t, cond.unsqueeze(1), null).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Text-conditional forward: <paramref name="ids"/> (N, L) int64 token ids, L ≤ text.max_tokens, and
    /// <paramref name="mask"/> (N, L) bool, true = real token (null = all real). A row with no real token is the empty
    /// caption (the unconditional input): it becomes the learned null token. Padded positions are masked in
    /// attention and pooling, so their ids never change the output. Returns float32 (N, out_channels, H, W).
    /// </summary>
    public override Tensor ForwardText(Tensor x, Tensor t, Tensor ids, Tensor? mask)
    {
        if (text_embedder is null)
            throw new LdmException("this is a class-conditional model, it takes class labels, not captions; pass class ids to forward.");
        var text = Config.Text!;
        text.CheckTokens(ids, mask);
        CheckBatch(x, t, ids.shape[0]);
        using var scope = torch.NewDisposeScope();
        var (tokens, tokenMask) = text_embedder.Encode(ids.to(ScalarType.Int64).to(x.device), mask?.to(x.device));
        Tap("text_embedder", tokens);
        return ForwardTokens(x, t, tokens, tokenMask).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The forward pass for any condition given as embeddings: <paramref name="condTokens"/> (N, L, D) (a class
    /// embedding is one token; text would be L token embeddings) with an optional (N, L) boolean mask
    /// (true = real token, false = padding). In-context: the tokens join the sequence; cross-attention: the patch
    /// tokens attend to them; adaLN-Zero: their (masked) mean is added to the time embedding; joint attention: both
    /// (they form the condition stream and their masked mean modulates every block). Returns float32
    /// (N, out_channels, H, W).
    /// </summary>
    public Tensor ForwardTokens(Tensor x, Tensor t, Tensor condTokens, Tensor? condMask)
    {
        CheckBatch(x, t, condTokens.shape[0]);
        if (condTokens.dim() != 3 || condTokens.shape[2] != Config.HiddenSize)
            throw new LdmException($"condition tokens must be (N, L, {Config.HiddenSize}), got [{string.Join(",", condTokens.shape)}]; embed the condition to the model width first.");
        if (condMask is not null && (condMask.dim() != 2 || condMask.shape[0] != condTokens.shape[0] || condMask.shape[1] != condTokens.shape[1]))
            throw new LdmException($"condition mask must be (N, L) = [{condTokens.shape[0]},{condTokens.shape[1]}], got [{string.Join(",", condMask.shape)}]; pass one flag per condition token.");

        using var scope = torch.NewDisposeScope();
        var dtype = ParameterDtype;
        var h = x.to(dtype);
        var cond = condTokens.to(dtype);
        var mask = condMask?.to(ScalarType.Bool);

        var patches = x_embedder.forward(h);                 // (N, T, D)
        Tap("x_embedder", patches);
        patches = patches + PosEmbed;
        var tEmb = t_embedder.forward(t);                    // (N, D), computed in float32, cast to dtype
        Tap("t_embedder", tEmb);

        var tokens = Config.Block switch
        {
            BlockType.AdaLnZero => RunAdaLnZero(patches, tEmb, cond, mask),
            BlockType.InContext => RunInContext(patches, tEmb, cond, mask),
            BlockType.CrossAttention => RunCrossAttention(patches, tEmb, cond, mask),
            BlockType.JointAttention => RunJointAttention(patches, tEmb, cond, mask),
            _ => throw new InvalidOperationException(),
        };
        Tap("final_layer", tokens);
        var image = Patches.Unpatchify(tokens, Config.OutChannels, Config.PatchSize);
        return image.to(ScalarType.Float32).MoveToOuterDisposeScope();
    }

    Tensor RunAdaLnZero(Tensor x, Tensor tEmb, Tensor cond, Tensor? mask)
    {
        var c = tEmb + PoolCondition(cond, mask);
        for (int i = 0; i < blocks.Count; i++)
        {
            x = ((AdaLnZeroBlock)blocks[i]).forward(x, c);
            Tap($"blocks.{i}", x);
        }
        return ((FinalLayer)final_layer).forward(x, c);
    }

    Tensor RunJointAttention(Tensor x, Tensor tEmb, Tensor cond, Tensor? mask)
    {
        // adaLN vector as SD3: time embedding + pooled condition; the condition tokens are the context stream.
        var c = tEmb + PoolCondition(cond, mask);
        Tensor? context = cond;
        for (int i = 0; i < blocks.Count; i++)
        {
            (x, context) = ((JointAttentionBlock)blocks[i]).Forward(x, context!, c, mask);
            Tap($"blocks.{i}", x);
        }
        return ((FinalLayer)final_layer).forward(x, c);
    }

    /// <summary>Mean of the condition tokens over the real (unmasked) ones; exactly the embedding for one class token.</summary>
    static Tensor PoolCondition(Tensor cond, Tensor? mask)
    {
        if (cond.shape[1] == 1) return cond.squeeze(1);
        if (mask is null) return cond.mean([1]);
        var w = mask.to(cond.dtype).unsqueeze(2);
        // An explicit, disposed Scalar: TorchSharp's implicit one can be finalized by the GC while libtorch still reads
        // it (a study run once died here with "Expected false to be true" in Scalar::toDouble).
        using var one = 1.0.ToScalar();
        return (cond * w).sum(1) / w.sum(1).clamp_min(one);
    }

    Tensor RunInContext(Tensor patches, Tensor tEmb, Tensor cond, Tensor? condMask)
    {
        long n = patches.shape[0], l = cond.shape[1];
        if (l < 1 || l > Config.ConditionTokens)
            throw new LdmException($"this in-context model was built for 1..{Config.ConditionTokens} condition token(s), got {l}; pass the condition as the model expects.");
        // Sequence: [time token, condition token(s), patch tokens]; the extra tokens carry learned positions (a text
        // shorter than max_tokens uses the first 1 + L of them, exactly as if it were padded to max_tokens).
        var extra = torch.cat([tEmb.unsqueeze(1), cond], 1) + ExtraPosEmbed.narrow(1, 0, 1 + l);
        int prefix = (int)extra.shape[1];
        var x = torch.cat([extra, patches], 1);
        Tensor? keyMask = condMask is null ? null : torch.cat([
            torch.ones(n, 1, dtype: ScalarType.Bool, device: x.device),
            condMask,
            torch.ones(n, patches.shape[1], dtype: ScalarType.Bool, device: x.device)], 1);

        if (skip_linears is null)
        {
            for (int i = 0; i < blocks.Count; i++)
            {
                x = ((InContextBlock)blocks[i]).forward(x, keyMask);
                Tap($"blocks.{i}", x);
            }
        }
        else
        {
            // U-ViT: outputs of the input half are kept and fed, mirrored, into the output half through Linear(2D, D).
            int half = Config.Depth / 2;
            var skips = new Stack<Tensor>();
            int b = 0;
            for (; b < half; b++) { x = ((InContextBlock)blocks[b]).forward(x, keyMask); Tap($"blocks.{b}", x); skips.Push(x); }
            x = ((InContextBlock)blocks[b]).forward(x, keyMask); Tap($"blocks.{b}", x); b++;
            for (int j = 0; j < half; j++, b++)
            {
                x = skip_linears[j].forward(torch.cat([x, skips.Pop()], 2));
                x = ((InContextBlock)blocks[b]).forward(x, keyMask);
                Tap($"blocks.{b}", x);
            }
        }
        // Only the patch tokens are decoded.
        var patchOut = x.narrow(1, prefix, patches.shape[1]);
        return ((InContextFinalLayer)final_layer).forward(patchOut);
    }

    Tensor RunCrossAttention(Tensor x, Tensor tEmb, Tensor cond, Tensor? condMask)
    {
        long n = x.shape[0];
        // The conditioning sequence [time token, condition token(s)] (the DiT paper's cross-attention variant).
        var context = torch.cat([tEmb.unsqueeze(1), cond], 1);
        Tensor? mask = condMask is null ? null : torch.cat([torch.ones(n, 1, dtype: ScalarType.Bool, device: x.device), condMask], 1);
        for (int i = 0; i < blocks.Count; i++)
        {
            x = ((CrossAttentionBlock)blocks[i]).forward(x, context, mask);
            Tap($"blocks.{i}", x);
        }
        return ((InContextFinalLayer)final_layer).forward(x);
    }

    /// <summary>
    /// Classifier-free guidance in one batch, with the official DiT semantics: only the first half of x is used
    /// (duplicated), y's first half holds the labels and its second half normally the null class; the guided
    /// prediction uncond + scale·(cond − uncond) replaces channels [0, guidedChannels) in both halves, the other
    /// channels (e.g. the learned variance) pass through unguided. The official code guides 3 channels; a sampler
    /// guiding the whole noise prediction passes in_channels.
    /// </summary>
    public Tensor ForwardWithCfg(Tensor x, Tensor t, Tensor y, double cfgScale, int guidedChannels)
    {
        long n = x.shape[0];
        if (n % 2 != 0)
            throw new LdmException($"classifier-free guidance needs an even batch (conditional half + unconditional half), got {n}; double the batch with null labels.");
        if (guidedChannels < 1 || guidedChannels > Config.OutChannels)
            throw new LdmException($"guided channel count {guidedChannels} is outside 1..{Config.OutChannels}; pass in_channels ({Config.InChannels}) to guide the noise prediction.");
        using var scope = torch.NewDisposeScope();
        var half = x.narrow(0, 0, n / 2);
        var combined = torch.cat([half, half], 0);
        var output = forward(combined, t, y);
        var eps = output.narrow(1, 0, guidedChannels);
        var rest = output.narrow(1, guidedChannels, output.shape[1] - guidedChannels);
        var condEps = eps.narrow(0, 0, n / 2);
        var uncondEps = eps.narrow(0, n / 2, n / 2);
        var guided = uncondEps + (condEps - uncondEps) * cfgScale;
        return torch.cat([torch.cat([guided, guided], 0), rest], 1).MoveToOuterDisposeScope();
    }

    void CheckBatch(Tensor x, Tensor t, long condBatch)
    {
        var c = Config;
        if (x.dim() != 4 || x.shape[1] != c.InChannels || x.shape[2] != c.InputSize || x.shape[3] != c.InputSize)
            throw new LdmException($"model input must be (N, {c.InChannels}, {c.InputSize}, {c.InputSize}), got [{string.Join(",", x.shape)}]; pass latents of the size the model was built for.");
        if (t.dim() != 1 || t.shape[0] != x.shape[0])
            throw new LdmException($"timesteps must be a 1-D tensor with one entry per sample ({x.shape[0]}), got [{string.Join(",", t.shape)}]; pass t of shape (N).");
        if (condBatch != x.shape[0])
            throw new LdmException($"the condition has {condBatch} entries for {x.shape[0]} samples; pass one label (or token sequence) per sample.");
    }

    void Tap(string name, Tensor value) => DebugTap?.Invoke(name, value);

    /// <summary>
    /// DiT's initialize_weights, deterministic from <paramref name="seed"/>: every Linear xavier-uniform with zero bias;
    /// the patch projection like a Linear (xavier on the flattened kernel, zero bias); label table and timestep MLP
    /// weights N(0, 0.02); the fixed 2-D sin-cos table in pos_embed. adaLN-Zero: the modulation Linears and the final
    /// linear are zero, so the model outputs zero. In-context and cross-attention: the output Linear of every residual
    /// branch and the final linear are zero, so every block starts as the identity and the output is zero;
    /// LayerNorms have weight 1, bias 0; the extra-token embeddings N(0, 0.02). Joint attention: every stream's
    /// modulation (so its gates) and the final layer's modulation and linear are zero, QK-norm scales 1.
    /// </summary>
    public void InitializeWeights(long seed)
    {
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var generator = new Generator(unchecked((ulong)seed), torch.CPU);

        foreach (var module in modules())
        {
            if (module is Linear linear)
            {
                XavierUniform(linear.weight!, generator);
                linear.bias?.zero_();
            }
            else if (module is LayerNorm norm)
            {
                norm.weight?.fill_(1);
                norm.bias?.zero_();
            }
        }

        var table = SinCosPositionEmbedding.Get2D(Config.HiddenSize, Config.GridSize, PosEmbed.device).to(ScalarType.Float32).unsqueeze(0);
        PosEmbed.copy_(table);

        var proj = x_embedder.Proj;
        XavierUniform(proj.weight!, generator);   // fans of the flattened (D, C·p·p) view, as DiT
        proj.bias?.zero_();

        if (y_embedder is not null) Normal(y_embedder.Table.weight!, 0.02, generator);
        var (mlp0, mlp2) = t_embedder.Linears;
        Normal(mlp0.weight!, 0.02, generator);
        Normal(mlp2.weight!, 0.02, generator);

        switch (Config.Block)
        {
            case BlockType.AdaLnZero:
                foreach (var block in blocks.Cast<AdaLnZeroBlock>()) ZeroLinear(block.ModulationLinear);
                var final = (FinalLayer)final_layer;
                ZeroLinear(final.ModulationLinear);
                ZeroLinear(final.Linear);
                break;
            case BlockType.InContext:
                Normal(ExtraPosEmbed, 0.02, generator);
                foreach (var block in blocks.Cast<InContextBlock>()) foreach (var l in block.ResidualOutputs) ZeroLinear(l);
                ZeroLinear(((InContextFinalLayer)final_layer).Linear);
                break;
            case BlockType.CrossAttention:
                foreach (var block in blocks.Cast<CrossAttentionBlock>()) foreach (var l in block.ResidualOutputs) ZeroLinear(l);
                ZeroLinear(((InContextFinalLayer)final_layer).Linear);
                break;
            case BlockType.JointAttention:
                foreach (var stream in blocks.Cast<JointAttentionBlock>().SelectMany(b => b.Streams))
                {
                    ZeroLinear(stream.ModulationLinear);
                    foreach (var w in stream.QkNormWeights) w.fill_(1);
                }
                var jointFinal = (FinalLayer)final_layer;
                ZeroLinear(jointFinal.ModulationLinear);
                ZeroLinear(jointFinal.Linear);
                break;
        }
        // Drawn last, so class models keep exactly the weights they had before text conditioning existed.
        text_embedder?.InitializeWeights(generator);
    }

    internal static void ZeroLinear(Linear linear)
    {
        linear.weight!.zero_();
        linear.bias?.zero_();
    }

    /// <summary>U(−a, a), a = sqrt(6 / (fan_in + fan_out)), fans of the 2-D (out, in·…) view. Drawn in float32 on the CPU
    /// with our generator, so the result does not depend on the parameter's device or dtype.</summary>
    internal static void XavierUniform(Tensor weight, Generator generator)
    {
        long fanOut = weight.shape[0];
        long fanIn = weight.NumberOfElements / fanOut;
        double bound = Math.Sqrt(6.0 / (fanIn + fanOut));
        using var values = torch.empty(weight.shape, ScalarType.Float32, torch.CPU).uniform_(-bound, bound, generator);
        weight.copy_(values);
    }

    /// <summary>N(0, std²), drawn like <see cref="XavierUniform"/>.</summary>
    internal static void Normal(Tensor weight, double std, Generator generator)
    {
        using var values = torch.empty(weight.shape, ScalarType.Float32, torch.CPU).normal_(0, std, generator);
        weight.copy_(values);
    }
}
