using System.Globalization;
using LatentDiffusion.IO;
using LatentDiffusion.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LatentDiffusion.Autoencoders;

/// <summary>
/// The KL-regularised autoencoder of latent diffusion / Stable Diffusion (CompVis <c>ldm.models.autoencoder.AutoencoderKL</c>):
/// images in [−1, 1] → encoder → <c>quant_conv</c> (1×1, 2·z_channels → 2·embed_dim) → posterior;
/// latents → <c>post_quant_conv</c> (1×1, embed_dim → z_channels) → decoder → images.
/// State-dict keys are CompVis' (<c>encoder.*</c>, <c>decoder.*</c>, <c>quant_conv.*</c>, <c>post_quant_conv.*</c>).
/// Inputs are cast to the parameters' dtype at entry, so a bf16 model takes float32 images.
/// </summary>
public sealed class AutoencoderKL : nn.Module<Tensor, Tensor>
{
    /// <summary>The model kind written into checkpoints (<c>ldm.model</c>).</summary>
    public const string ModelKind = "autoencoder-kl";

    /// <summary>Metadata key of the latent scale factor in checkpoints.</summary>
    public const string LatentScaleKey = "ldm.latent_scale";

    /// <summary>Stable Diffusion's latent scale factor (latents are multiplied by it before diffusion).</summary>
    public const double SdLatentScale = 0.18215;

    readonly Encoder encoder;
    readonly Decoder decoder;
    readonly Conv2d quant_conv, post_quant_conv;

    /// <summary>The architecture the model was built with.</summary>
    public AutoencoderConfig Config { get; }

    /// <summary>Latent scale factor: diffusion works on <c>scale · z</c> so that latents have about unit variance
    /// (0.18215 for Stable Diffusion; measured on the data for our own autoencoders). Stored in checkpoints.</summary>
    public double LatentScale { get; set; } = 1.0;

    /// <summary>A new model of this architecture with torch's default initialisation (see <see cref="ResetParameters"/> for a seeded one).</summary>
    public AutoencoderKL(AutoencoderConfig config) : base(nameof(AutoencoderKL))
    {
        config.Validate();
        Config = config;
        encoder = new Encoder(config);
        decoder = new Decoder(config);
        int zMoments = config.DoubleZ ? 2 * config.ZChannels : config.ZChannels;
        quant_conv = nn.Conv2d(zMoments, 2 * config.EmbedDim, kernel_size: 1);
        post_quant_conv = nn.Conv2d(config.EmbedDim, config.ZChannels, kernel_size: 1);
        RegisterComponents();
    }

    internal Encoder EncoderNet => encoder;
    internal Decoder DecoderNet => decoder;

    ScalarType ParamDType => quant_conv.weight!.dtype;
    Device ParamDevice => quant_conv.weight!.device;

    /// <summary>The last layer of the decoder (its weight is used by the adaptive GAN weight of LDM's loss).</summary>
    public Tensor LastLayerWeight => decoder.get_parameter("conv_out.weight")!;

    /// <summary>The encoder's raw output (before quant_conv).</summary>
    public Tensor EncoderOutput(Tensor x)
    {
        using var xin = x.to(ParamDType, ParamDevice);
        return encoder.forward(xin);
    }

    /// <summary>Moments (mean | logvar) after quant_conv, shape (B, 2·embed_dim, H/f, W/f).</summary>
    public Tensor Moments(Tensor x)
    {
        CheckImage(x);
        using var h = EncoderOutput(x);
        return NarrowConv.Forward(quant_conv, h);
    }

    /// <summary>The posterior q(z | x) for images x (B, in_channels, H, W) in [−1, 1].</summary>
    public DiagonalGaussianDistribution Encode(Tensor x)
    {
        using var scope = NewDisposeScope();
        return new DiagonalGaussianDistribution(Moments(x)).MoveToOuterDisposeScope();
    }

    /// <summary>Images from latents z (B, embed_dim, h, w) (unscaled: divide diffusion latents by the scale factor first).</summary>
    public Tensor Decode(Tensor z)
    {
        if (z.dim() != 4 || z.shape[1] != Config.EmbedDim)
            throw new LdmException($"the autoencoder decodes latents of shape (N, {Config.EmbedDim}, h, w), got [{string.Join(",", z.shape)}]; pass latents made by this autoencoder.");
        using var scope = NewDisposeScope();
        var h = NarrowConv.Forward(post_quant_conv, z.to(ParamDType, ParamDevice));
        return decoder.forward(h).MoveToOuterDisposeScope();
    }

    /// <summary>Reconstruction through the posterior mode: decode(encode(x).mode()).</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return Decode(Encode(x).Mode()).MoveToOuterDisposeScope();
    }

    /// <summary>Reconstruction and posterior, sampling z from the posterior with <paramref name="generator"/>
    /// (CompVis' <c>forward(input, sample_posterior=True)</c>) or taking its mode.</summary>
    public (Tensor reconstruction, DiagonalGaussianDistribution posterior) Reconstruct(Tensor x, bool samplePosterior, Generator? generator = null)
    {
        using var scope = NewDisposeScope();
        var posterior = Encode(x);
        var z = samplePosterior ? posterior.Sample(generator) : posterior.Mode();
        var rec = Decode(z);
        return (rec.MoveToOuterDisposeScope(), posterior.MoveToOuterDisposeScope());
    }

    void CheckImage(Tensor x)
    {
        if (x.dim() != 4 || x.shape[1] != Config.InChannels)
            throw new LdmException($"the autoencoder encodes images of shape (N, {Config.InChannels}, H, W), got [{string.Join(",", x.shape)}]; give images with {Config.InChannels} channel(s).");
        int f = Config.DownsampleFactor;
        if (x.shape[2] % f != 0 || x.shape[3] % f != 0)
            throw new LdmException($"image size {x.shape[2]}x{x.shape[3]} is not divisible by the autoencoder's down-sampling factor {f}; resize or crop the images to a multiple of {f}.");
    }

    /// <summary>
    /// Re-draws every parameter from <paramref name="generator"/> with PyTorch's default distributions (conv weights and
    /// biases U(−1/√fan_in, 1/√fan_in), norm scales 1, shifts 0), so a new model depends on its seed only and not on
    /// the process-wide RNG (which other threads may use).
    /// </summary>
    public void ResetParameters(Generator generator)
    {
        using var _ = torch.no_grad();
        foreach (var (name, p) in named_parameters())
        {
            bool norm = name.Split('.')[^2].StartsWith("norm");
            if (norm) { if (name.EndsWith("weight")) p.fill_(1.0); else p.zero_(); continue; }
            string weightName = name.EndsWith(".bias") ? name[..^".bias".Length] + ".weight" : name;
            var w = get_parameter(weightName)!;
            long fanIn = w.shape[1] * w.shape[2] * w.shape[3];
            double bound = 1.0 / Math.Sqrt(fanIn);
            using var u = torch.rand(p.shape, device: torch.CPU, generator: generator);   // CPU draw: same weights on every device
            p.copy_(u * (2 * bound) - bound);
        }
    }

    /// <summary>Saves weights, config and latent scale as one checkpoint file (kind <see cref="ModelKind"/>), atomically.</summary>
    public void Save(string path, ScalarType? storageDtype = null, IReadOnlyDictionary<string, string>? extra = null)
    {
        var meta = new Dictionary<string, string> { [LatentScaleKey] = LatentScale.ToString("R", CultureInfo.InvariantCulture) };
        if (extra != null) foreach (var (k, v) in extra) meta[k] = v;
        ModelCheckpoint.Save(path, ModelKind, Config.ToJson(), this, storageDtype, meta);
    }

    /// <summary>Loads one of our autoencoder checkpoints (config, weights, latent scale) as a float32 model in eval mode.</summary>
    public static AutoencoderKL Load(string path)
    {
        var ckpt = ModelCheckpoint.Load(path, ModelKind);
        try
        {
            var model = new AutoencoderKL(AutoencoderConfig.FromJson(ckpt.Config, path));
            StateDict.Load(model, ckpt.Weights, path);
            model.LatentScale = ReadLatentScale(ckpt.Extra, path);
            model.eval();
            return model;
        }
        finally { foreach (var t in ckpt.Weights.Values) t.Dispose(); }
    }

    /// <summary>Builds a model from a config and a state dict in any known naming (CompVis, diffusers, <c>first_stage_model.*</c>).</summary>
    public static AutoencoderKL FromStateDict(AutoencoderConfig config, IReadOnlyDictionary<string, Tensor> dict, string source, double latentScale = 1.0)
    {
        var model = new AutoencoderKL(config) { LatentScale = latentScale };
        StateDict.Load(model, AutoencoderKeys.ToCompVis(dict), source);
        model.eval();
        return model;
    }

    static double ReadLatentScale(IReadOnlyDictionary<string, string> extra, string path)
    {
        if (!extra.TryGetValue(LatentScaleKey, out var s)) return 1.0;
        if (!double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) || !(v > 0) || double.IsInfinity(v))
            throw new LdmException($"'{path}' has an invalid latent scale '{s}' in {LatentScaleKey}; convert the weights again with a positive latent scale factor.");
        return v;
    }
}
