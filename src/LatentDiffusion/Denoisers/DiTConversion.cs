using LatentDiffusion.Diffusion;
using LatentDiffusion.Transformers;
using static TorchSharp.torch;

namespace LatentDiffusion.Denoisers;

/// <summary>Turns an official DiT checkpoint (.pt state dict, or safetensors with the same keys) into our denoiser file.</summary>
public static class DiTConversion
{
    /// <returns>The config that was inferred and written.</returns>
    public static TransformerConfig Convert(string input, string output, int? numHeads = null, ScalarType? storageDtype = null)
    {
        var sd = IO.CheckpointImport.LoadAny(input);
        try
        {
            var config = OfficialDiT.InferConfig(sd, input, numHeads);
            using var model = new DiffusionTransformer(config);
            IO.StateDict.Load(model, sd, input);
            // DiT trains and samples with create_diffusion's defaults: 1000 linear steps, learned sigma, ε prediction.
            var diffusion = new DiffusionConfig { LearnSigma = config.LearnSigma };
            // DiT samples with guidance 4 (sample.py's cfg_scale default) and 250 DDPM steps.
            var info = new DenoiserInfo(config, diffusion, config.InChannels == 4 ? DataSpace.Latent : DataSpace.Pixel, [])
            {
                Sampling = new RecommendedSampling { Sampler = SamplerKind.Ddpm, Steps = 250, GuidanceScale = 4.0 },
            };
            DenoiserCheckpoint.Save(output, model, info, storageDtype,
                new Dictionary<string, string> { ["ldm.converted_from"] = Path.GetFileName(input) });
            return config;
        }
        finally
        {
            foreach (var t in sd.Values) t.Dispose();
        }
    }
}
