using System.Text.Json;
using System.Text.Json.Nodes;
using LatentDiffusion.Denoisers;
using LatentDiffusion.Diffusion;
using LatentDiffusion.Transformers;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests;

/// <summary>Small denoisers and checkpoints that build and sample in milliseconds, for CLI and pipeline tests.</summary>
public static class TinyModels
{
    /// <summary>An in-context Transformer: hidden 32, depth 2, 2 heads, patch 4, on size×size×channels, 12 classes.</summary>
    public static TransformerConfig Config(int size = 8, int channels = 3, int numClasses = 12, bool learnSigma = true) => new TransformerConfig
    {
        InputSize = size, PatchSize = 4, InChannels = channels, HiddenSize = 32, Depth = 2, NumHeads = 2,
        NumClasses = numClasses, LearnSigma = learnSigma, Block = BlockType.InContext,
    }.Validate();

    public static DenoiserInfo Info(TransformerConfig cfg, string space = "pixel") => new(cfg,
        new DiffusionConfig { LearnSigma = cfg.LearnSigma }, space == "pixel" ? DataSpace.Pixel : DataSpace.Latent,
        cfg.NumClasses == 12 ? ShapesNames() : []);

    static List<string> ShapesNames() => Data.ShapesDataset.ClassNames.ToList();

    /// <summary>A model whose zero-initialised output layers are randomised, so it computes something non-trivial.</summary>
    public static DiffusionTransformer RandomModel(TransformerConfig cfg, long seed = 1)
    {
        var model = new DiffusionTransformer(cfg, seed);
        using var _ = torch.no_grad();
        var g = new Generator((ulong)seed + 100);
        foreach (var (_, p) in model.named_parameters())
            if (p.dim() >= 1 && p.abs().max().item<float>() == 0)
                p.copy_(torch.randn(p.shape, generator: g) * (p.dim() > 1 ? 1.0 / Math.Sqrt(p.shape[1]) : 0.05));
        model.eval();
        return model;
    }

    /// <summary>Writes a random tiny denoiser checkpoint and returns its path.</summary>
    public static string SaveCheckpoint(string dir, string space = "pixel", int size = 8, int channels = 3, string name = "tiny.safetensors")
    {
        var cfg = Config(size, channels);
        using var model = RandomModel(cfg);
        string path = Path.Combine(dir, name);
        DenoiserCheckpoint.Save(path, model, Info(cfg, space));
        return path;
    }
}
