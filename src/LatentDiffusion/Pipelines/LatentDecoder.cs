using LatentDiffusion.Autoencoders;
using LatentDiffusion.Denoisers;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Pipelines;

/// <summary>
/// Turns a latent-space denoiser's samples into images with its autoencoder: x = decode(z / scale), as LDM and DiT do
/// (the denoiser was trained on latents multiplied by the autoencoder's latent scale). Decodes in batches without
/// gradients, so memory stays bounded however many samples come in.
/// </summary>
internal sealed class LatentDecoder : IDisposable
{
    public AutoencoderKL Autoencoder { get; }
    /// <summary>Latents per decoder batch.</summary>
    public int BatchSize { get; }

    readonly bool _ownsAutoencoder;

    /// <param name="autoencoder">The autoencoder whose decoder turns latents into images.</param>
    /// <param name="batchSize">Latents per decoder batch.</param>
    /// <param name="ownsAutoencoder">Dispose the autoencoder with this decoder.</param>
    public LatentDecoder(AutoencoderKL autoencoder, int batchSize = 16, bool ownsAutoencoder = true)
    {
        _ownsAutoencoder = ownsAutoencoder;
        if (batchSize < 1) throw new LdmException($"decode batch size must be positive, got {batchSize}.");
        Autoencoder = autoencoder;
        BatchSize = batchSize;
    }

    /// <summary>Loads an autoencoder checkpoint and checks that it decodes the latents of <paramref name="denoiser"/>.</summary>
    public static LatentDecoder Load(string autoencoderPath, DenoiserInfo denoiser, string denoiserPath, int batchSize = 16)
    {
        if (!File.Exists(autoencoderPath))
            throw new LdmException($"autoencoder '{autoencoderPath}' does not exist; pass a file made by ldm train-autoencoder or ldm convert --kind autoencoder.");
        var ae = AutoencoderKL.Load(autoencoderPath);
        try
        {
            CheckCompatible(ae.Config, denoiser, autoencoderPath, denoiserPath);
            return new LatentDecoder(ae, batchSize);
        }
        catch
        {
            ae.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The decoder of the denoiser file <paramref name="denoiserPath"/>: <paramref name="autoencoderPath"/> when given,
    /// else the autoencoder the model names beside it; null for a pixel-space model given no autoencoder.
    /// </summary>
    public static LatentDecoder? ForDenoiser(string denoiserPath, DenoiserInfo denoiser, string? autoencoderPath = null, int batchSize = 16)
    {
        if (autoencoderPath is null && denoiser.IsPixelSpace) return null;
        string path = autoencoderPath ?? denoiser.AutoencoderBeside(denoiserPath)
            ?? throw new LdmException($"'{denoiserPath}' is a latent model and names no autoencoder beside it; give the autoencoder's path, or keep the model and its autoencoder in one folder.");
        return Load(path, denoiser, denoiserPath, batchSize);
    }

    /// <summary>Refuses a pixel-space denoiser, and an autoencoder whose latents (channels × size) are not the denoiser's input.</summary>
    public static void CheckCompatible(AutoencoderConfig autoencoder, DenoiserInfo denoiser, string autoencoderPath, string denoiserPath)
    {
        if (denoiser.IsPixelSpace)
            throw new LdmException($"'{denoiserPath}' is a pixel-space denoiser, its samples are images already; load it without an autoencoder.");
        var t = denoiser.Backbone;
        int c = autoencoder.EmbedDim, s = autoencoder.LatentResolution;
        if (c != t.InChannels || s != t.InputSize)
            throw new LdmException($"the autoencoder '{autoencoderPath}' makes latents of {c}x{s}x{s} (channels x height x width) but the denoiser '{denoiserPath}' works on {t.InChannels}x{t.InputSize}x{t.InputSize}; pass the autoencoder the denoiser was trained with.");
    }

    /// <summary>Images in [−1, 1], shape (N, out_ch, H, W), from diffusion latents (N, C, h, w) (scaled by the latent scale).</summary>
    public Tensor Decode(Tensor latents)
    {
        using var noGrad = torch.no_grad();
        var parts = new List<Tensor>();
        try
        {
            for (long begin = 0; begin < latents.shape[0]; begin += BatchSize)
            {
                using var scope = torch.NewDisposeScope();
                long n = Math.Min(BatchSize, latents.shape[0] - begin);
                var z = latents.narrow(0, begin, n).to(ScalarType.Float32) / Autoencoder.LatentScale;
                parts.Add(Autoencoder.Decode(z).clamp(-1.0, 1.0).MoveToOuterDisposeScope());
            }
            return parts.Count == 1 ? parts[0].alias() : torch.cat(parts, 0);
        }
        finally { foreach (var p in parts) p.Dispose(); }
    }

    public void Dispose()
    {
        if (_ownsAutoencoder) Autoencoder.Dispose();
    }
}
