using LatentDiffusion.Diffusion;
using LatentDiffusion.Layers;
using LatentDiffusion.Text;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LatentDiffusion.UNets;

/// <summary>
/// The LDM UNet (CompVis latent-diffusion <c>openaimodel.UNetModel</c>): residual blocks conditioned on the time
/// embedding over several resolutions, attention (self-attention, or a SpatialTransformer with cross-attention on a
/// context) at the chosen downsampling factors, skip connections from the way down to the way up. A class model adds
/// its label embedding (<c>label_emb</c>) to the time embedding; a text model (config <c>text</c>) feeds its caption's
/// token embeddings (<c>text_embedder</c>) as the cross-attention context. State-dict keys are the official ones
/// (<c>time_embed.0.weight</c>, <c>input_blocks.1.0.in_layers.2.weight</c>, ...), so the <c>model.diffusion_model.*</c>
/// part of a CompVis checkpoint loads once the prefix is stripped.
/// </summary>
public sealed class UNetModel : DenoiserNetwork
{
    readonly Sequential time_embed;
    readonly Embedding? label_emb;
    readonly TextEncoder? text_embedder;
    readonly ModuleList<TimestepEmbedSequential> input_blocks;
    readonly TimestepEmbedSequential middle_block;
    readonly ModuleList<TimestepEmbedSequential> output_blocks;
    readonly Sequential @out;

    /// <summary>The architecture this model was built with (validated).</summary>
    public UNetConfig Config { get; }
    /// <summary>The same config as the backbone's general description.</summary>
    public override IBackboneConfig Backbone => Config;

    /// <summary>Builds the model and initialises its weights deterministically from <paramref name="seed"/>.</summary>
    public UNetModel(UNetConfig config, long seed = 0) : base(nameof(UNetModel))
    {
        Config = config.Validate();
        int mc = config.ModelChannels, embDim = config.TimeEmbedDim;
        double dropout = config.Dropout;
        bool ss = config.UseScaleShiftNorm;
        time_embed = nn.Sequential(("0", nn.Linear(mc, embDim)), ("1", nn.SiLU()), ("2", nn.Linear(embDim, embDim)));
        if (config.NumClasses > 0) label_emb = nn.Embedding(config.LabelTableSize, embDim);
        if (config.Text is { } text) text_embedder = new TextEncoder(text, config.ContextDim!.Value);

        nn.Module Attention(int ch) => config.UseSpatialTransformer
            ? new SpatialTransformer(ch, config.HeadsAt(ch), ch / config.HeadsAt(ch), config.TransformerDepth, config.ContextDim)
            : new AttentionBlock(ch, config.HeadsAt(ch));

        // The way down: a stem conv, then per level num_res_blocks (ResBlock [+ attention]) and a downsample between
        // levels. Every entry's output is kept for the way up, so its width is remembered.
        var inputs = new List<TimestepEmbedSequential> { new(nn.Conv2d(config.InChannels, mc, kernel_size: 3, padding: 1)) };
        var skipChannels = new Stack<int>();
        skipChannels.Push(mc);
        int ch = mc, ds = 1;
        for (int level = 0; level < config.ChannelMult.Length; level++)
        {
            for (int i = 0; i < config.NumResBlocks; i++)
            {
                var layers = new List<nn.Module> { new ResBlock(ch, embDim, dropout, mc * config.ChannelMult[level], ss) };
                ch = mc * config.ChannelMult[level];
                if (config.AttentionResolutions.Contains(ds)) layers.Add(Attention(ch));
                inputs.Add(new TimestepEmbedSequential(layers.ToArray()));
                skipChannels.Push(ch);
            }
            if (level != config.ChannelMult.Length - 1)
            {
                inputs.Add(new TimestepEmbedSequential(config.ResblockUpdown
                    ? new ResBlock(ch, embDim, dropout, ch, ss, down: true)
                    : new Downsample(ch, useConv: true)));
                skipChannels.Push(ch);
                ds *= 2;
            }
        }
        input_blocks = nn.ModuleList(inputs.ToArray());
        middle_block = new TimestepEmbedSequential(
            new ResBlock(ch, embDim, dropout, null, ss), Attention(ch), new ResBlock(ch, embDim, dropout, null, ss));

        // The way up: per level num_res_blocks + 1 ResBlocks on [h, skip] (+ attention), an upsample ending each level but the first.
        var outputs = new List<TimestepEmbedSequential>();
        for (int level = config.ChannelMult.Length - 1; level >= 0; level--)
        {
            for (int i = 0; i <= config.NumResBlocks; i++)
            {
                int skip = skipChannels.Pop();
                var layers = new List<nn.Module> { new ResBlock(ch + skip, embDim, dropout, mc * config.ChannelMult[level], ss) };
                ch = mc * config.ChannelMult[level];
                if (config.AttentionResolutions.Contains(ds)) layers.Add(Attention(ch));
                if (level > 0 && i == config.NumResBlocks)
                {
                    layers.Add(config.ResblockUpdown ? new ResBlock(ch, embDim, dropout, ch, ss, up: true) : new Upsample(ch, useConv: true));
                    ds /= 2;
                }
                outputs.Add(new TimestepEmbedSequential(layers.ToArray()));
            }
        }
        output_blocks = nn.ModuleList(outputs.ToArray());
        @out = nn.Sequential(("0", new GroupNorm32(ch)), ("1", nn.SiLU()), ("2", nn.Conv2d(mc, config.OutChannels, kernel_size: 3, padding: 1)));
        RegisterComponents();
        InitializeWeights(seed);
    }

    /// <summary>
    /// Debugging hook: called with (name, activation) for <c>time_embed</c> (with the label embedding added),
    /// <c>input_blocks.i</c>, <c>middle_block</c>, <c>output_blocks.i</c> and <c>out</c>, to find where a mismatch
    /// starts. The tensor belongs to the forward's dispose scope: copy it (clone + DetachFromDisposeScope) to keep it.
    /// </summary>
    public Action<string, Tensor>? DebugTap { get; set; }

    /// <summary>The dtype of the weights (float32, or the dtype the model was moved to).</summary>
    public override ScalarType ParameterDtype => ((Linear)time_embed[0]).weight!.dtype;

    /// <summary>The id of the null (unconditional) class (exists when class_dropout_prob &gt; 0).</summary>
    public int NullClass => Config.NullClass;

    /// <summary>
    /// The official call <c>forward(x, timesteps, context, y)</c>: x (N, in_channels, H, W), timesteps (N) integer or
    /// fractional, context (N, L, context_dim) for spatial-transformer models (null: their cross-attention attends to
    /// the image tokens, as the official code), y (N) int64 class ids — required exactly when the model has classes.
    /// Returns (N, out_channels, H, W) float32. No label dropout here, even in training mode.
    /// </summary>
    public Tensor Forward(Tensor x, Tensor timesteps, Tensor? context = null, Tensor? y = null) =>
        Run(x, timesteps, context, null, y, dropLabels: false);

    /// <summary>
    /// Class-conditional forward: y (N) int64 class ids, the null id allowed when the model has one. In training mode
    /// labels are replaced by the null class with probability class_dropout_prob (draws from
    /// <see cref="DenoiserNetwork.LabelDropoutGenerator"/>). A model without classes ignores <paramref name="y"/>.
    /// </summary>
    public override Tensor forward(Tensor x, Tensor t, Tensor y)
    {
        if (text_embedder is not null)
            throw new LdmException("this is a text-conditioned UNet, it takes captions, not class labels; pass token ids to ForwardText.");
        if (Config.UseSpatialTransformer)
            throw new LdmException("this UNet attends to a context (cross-attention) and has no caption encoder; call Forward(x, timesteps, context) with the context tensor.");
        return Run(x, t, null, null, label_emb is null ? null : y, dropLabels: true);
    }

    /// <summary>
    /// Text-conditional forward: <paramref name="ids"/> (N, L) int64 token ids, L ≤ text.max_tokens, and
    /// <paramref name="mask"/> (N, L) bool, true = real token (null = all real). The token embeddings are the
    /// cross-attention context; padded tokens are masked; a caption without real tokens is the learned null token.
    /// </summary>
    public override Tensor ForwardText(Tensor x, Tensor t, Tensor ids, Tensor? mask)
    {
        if (text_embedder is null)
            throw new LdmException("this UNet is not text-conditioned; pass class ids to forward (or a context to Forward).");
        var text = Config.Text!;
        text.CheckTokens(ids, mask);
        using var scope = torch.NewDisposeScope();
        var (tokens, tokenMask) = text_embedder.Encode(ids.to(ScalarType.Int64).to(x.device), mask?.to(x.device));
        return Run(x, t, tokens, tokenMask, null, dropLabels: false).MoveToOuterDisposeScope();
    }

    Tensor Run(Tensor x, Tensor t, Tensor? context, Tensor? mask, Tensor? y, bool dropLabels)
    {
        var c = Config;
        if (x.dim() != 4 || x.shape[1] != c.InChannels || x.shape[2] < 1 || x.shape[3] < 1)
            throw new LdmException($"UNet input must be (N, {c.InChannels}, H, W), got [{string.Join(",", x.shape)}]; pass latents of the shape the model was built for ({c.InChannels}×{c.ImageSize}×{c.ImageSize}).");
        if (t.dim() != 1 || t.shape[0] != x.shape[0])
            throw new LdmException($"timesteps must be a 1-D tensor with one entry per sample ({x.shape[0]}), got [{string.Join(",", t.shape)}]; pass t of shape (N).");
        if ((y is null) != (label_emb is null))
            throw new LdmException(label_emb is null
                ? "this UNet has no class labels (num_classes is not set); call it without y."
                : "this UNet is class-conditional; pass y, one class id per sample.");
        if (context is not null && (context.dim() != 3 || context.shape[0] != x.shape[0] || context.shape[2] != (c.ContextDim ?? -1)))
            throw new LdmException($"the context must be (N={x.shape[0]}, L, {c.ContextDim?.ToString() ?? "context_dim"}), got [{string.Join(",", context.shape)}]{(c.ContextDim is null ? "; this UNet has no cross-attention (context_dim is not set)" : "")}.");

        using var scope = torch.NewDisposeScope();
        var dtype = ParameterDtype;
        var device = ParameterDevice;
        var tFreq = Layers.TimestepEmbedder.TimestepEmbedding(t.to(device), c.ModelChannels);   // [cos | sin], float32
        var emb = time_embed.forward(tFreq.to(dtype));
        if (label_emb is not null) emb = emb + label_emb.forward(Labels(y!, dropLabels).to(device));
        DebugTap?.Invoke("time_embed", emb);

        var ctx = context?.to(device).to(dtype);
        var m = mask?.to(device);
        var h = x.to(device).to(dtype);
        var skips = new Stack<Tensor>();
        for (int i = 0; i < input_blocks.Count; i++)
        {
            h = input_blocks[i].forward(h, emb, ctx, m);
            DebugTap?.Invoke($"input_blocks.{i}", h);
            skips.Push(h);
        }
        h = middle_block.forward(h, emb, ctx, m);
        DebugTap?.Invoke("middle_block", h);
        for (int i = 0; i < output_blocks.Count; i++)
        {
            var skip = skips.Pop();
            // A block that ends its level up-samples to the size the way down had there: the size of the next skip.
            // Twice the input for even sizes (the official layer); 4 → 7 where an odd side was halved to 4.
            long[]? upsampleTo = skips.Count > 0 ? [skips.Peek().shape[2], skips.Peek().shape[3]] : null;
            h = output_blocks[i].forward(torch.cat([h, skip], 1), emb, ctx, m, upsampleTo);
            DebugTap?.Invoke($"output_blocks.{i}", h);
        }
        // out.2 has out_channels outputs (a few: the image or latent channels, twice with learned sigma), which libtorch's
        // CPU conv backward gets wrong: see NarrowConv.
        var normed = ((nn.Module<Tensor, Tensor>)@out[1]).forward(((nn.Module<Tensor, Tensor>)@out[0]).forward(h));
        h = NarrowConv.Forward((Conv2d)@out[2], normed);
        DebugTap?.Invoke("out", h);
        return h.to(ScalarType.Float32).MoveToOuterDisposeScope();
    }

    /// <summary>Checks the ids and, in training with label dropout, replaces each by the null class with probability class_dropout_prob.</summary>
    Tensor Labels(Tensor y, bool drop)
    {
        if (y.dim() != 1 || y.is_floating_point())
            throw new LdmException($"class labels must be a 1-D integer tensor (N), got {y.dtype} [{string.Join(",", y.shape)}]; pass one int64 class id per sample.");
        int rows = Config.LabelTableSize;
        if (y.NumberOfElements > 0)
        {
            long min = y.min().item<long>(), max = y.max().item<long>();
            if (min < 0 || max >= rows)
                throw new LdmException($"class id {(min < 0 ? min : max)} is out of range: this model knows ids 0..{rows - 1}{(rows > Config.NumClasses ? $" ({Config.NullClass} = null class)" : "")}; pass labels in that range.");
        }
        var ids = y.to(ScalarType.Int64);
        if (!drop || !training || rows == Config.NumClasses) return ids;
        var draws = LabelDropoutDraws ?? torch.rand(new[] { y.shape[0] }, device: torch.CPU, generator: LabelDropoutGenerator);   // CPU draw: same on every device
        var dropped = draws.to(y.device) < Config.ClassDropoutProb;
        return torch.where(dropped, torch.full_like(ids, Config.NullClass), ids);
    }

    /// <summary>
    /// Deterministic initialisation from <paramref name="seed"/>, as PyTorch's defaults for the official model: every
    /// conv and Linear U(±1/√fan_in) for weight and bias, the label table N(0, 1), norms weight 1 and bias 0, and the
    /// official zero_module layers (each ResBlock's last conv, each attention's proj_out, the output conv) zero, so a new
    /// model predicts zero and every block starts as the identity. Drawn in float32 on the CPU with our own generator,
    /// so the weights do not depend on the device or dtype.
    /// </summary>
    public void InitializeWeights(long seed)
    {
        using var noGrad = torch.no_grad();
        var generator = new Generator(unchecked((ulong)seed), torch.CPU);
        foreach (var (_, module) in named_modules())
        {
            switch (module)
            {
                case Conv2d conv: Uniform(conv.weight!, conv.bias, generator); break;
                case Conv1d conv: Uniform(conv.weight!, conv.bias, generator); break;
                case Linear linear: Uniform(linear.weight!, linear.bias, generator); break;
                case LayerNorm norm: norm.weight?.fill_(1); norm.bias?.zero_(); break;
            }
        }
        if (label_emb is not null) Draw(label_emb.weight!, g => torch.empty(label_emb.weight!.shape, ScalarType.Float32, torch.CPU).normal_(0, 1, g), generator);
        foreach (var (_, module) in named_modules())
        {
            var zero = module switch
            {
                ResBlock res => res.OutConv,
                AttentionBlock attention => (nn.Module)attention.ProjOut,
                SpatialTransformer st => st.ProjOut,
                _ => null,
            };
            if (zero is not null) foreach (var p in zero.parameters()) p.zero_();
        }
        foreach (var p in ((Conv2d)@out[2]).parameters()) p.zero_();
        text_embedder?.InitializeWeights(generator);
    }

    static void Uniform(Tensor weight, Tensor? bias, Generator generator)
    {
        double bound = 1 / Math.Sqrt(weight.NumberOfElements / weight.shape[0]);
        Draw(weight, g => torch.empty(weight.shape, ScalarType.Float32, torch.CPU).uniform_(-bound, bound, g), generator);
        if (bias is not null) Draw(bias, g => torch.empty(bias.shape, ScalarType.Float32, torch.CPU).uniform_(-bound, bound, g), generator);
    }

    static void Draw(Tensor target, Func<Generator, Tensor> values, Generator generator)
    {
        using var v = values(generator);
        target.copy_(v);
    }
}
