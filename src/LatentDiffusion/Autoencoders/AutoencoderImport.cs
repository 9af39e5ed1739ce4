using LatentDiffusion.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Autoencoders;

/// <summary>
/// Imports autoencoder weights made elsewhere: a diffusers <c>diffusion_pytorch_model.safetensors</c>, a plain
/// state-dict safetensors (CompVis names, optionally with <c>first_stage_model.</c>), or a PyTorch <c>.ckpt</c>/<c>.pt</c>
/// of CompVis / Stable Diffusion (its <c>state_dict</c>).
/// </summary>
public static class AutoencoderImport
{
    /// <summary>Builds the model of <paramref name="config"/> and loads the file's weights into it (strict: every
    /// tensor must fit), with the given latent scale.</summary>
    public static AutoencoderKL FromFile(string path, AutoencoderConfig config, double latentScale)
    {
        if (!(latentScale > 0) || double.IsInfinity(latentScale))
            throw new LdmException($"the latent scale factor must be a positive number, got {latentScale}; pass e.g. --scale-factor 0.18215.");
        using var scope = torch.NewDisposeScope();
        var dict = ReadStateDict(path);
        return AutoencoderKL.FromStateDict(config, dict, path, latentScale);
    }

    /// <summary>Every tensor of a weights file, by its stored name.</summary>
    public static Dictionary<string, Tensor> ReadStateDict(string path)
    {
        if (!File.Exists(path)) throw new LdmException($"file not found: '{path}'; check the path.");
        string ext = Path.GetExtension(path).ToLowerInvariant();
        if (ext == ".safetensors")
        {
            using var file = SafetensorsFile.Open(path);
            return file.ReadAll();
        }
        if (ext is ".ckpt" or ".pt" or ".pth" or ".bin")
            throw new LdmException($"reading PyTorch checkpoints ('{path}') is not available in this build; convert it to safetensors first.");  // TODO(io merge): IO.PyTorchCheckpoint
        throw new LdmException($"'{path}' is neither a .safetensors file nor a PyTorch checkpoint (.ckpt, .pt, .pth, .bin); pass one of those.");
    }
}
