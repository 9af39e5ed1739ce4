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
            throw new LdmOptionException("AutoencoderKL", "LatentScale", latentScale, "be a positive number", "Stable Diffusion's is 0.18215");
        using var scope = torch.NewDisposeScope();
        var dict = ReadStateDict(path);
        return AutoencoderKL.FromStateDict(config, dict, path, latentScale);
    }

    /// <summary>
    /// Every tensor of a weights file, by its stored name: safetensors, or a torch.save file (.ckpt/.pt/.pth/.bin; a
    /// CompVis/SD .ckpt's <c>state_dict</c> wrapper is unwrapped, and its other tensors are dropped). Which entries are the
    /// autoencoder's (<c>first_stage_model.*</c> of a full LDM/SD checkpoint) is decided when the dictionary is loaded (<see cref="AutoencoderKL.FromStateDict"/>).
    /// </summary>
    public static Dictionary<string, Tensor> ReadStateDict(string path)
    {
        if (!File.Exists(path) && !Directory.Exists(path)) throw new LdmException($"file not found: '{path}'; check the path.");
        return CheckpointImport.LoadAny(path);
    }
}
