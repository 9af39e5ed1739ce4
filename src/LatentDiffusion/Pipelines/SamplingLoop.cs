using LatentDiffusion.Diffusion;
using LatentDiffusion.Transformers;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Pipelines;

/// <summary>
/// The sampling loop shared by the class and the text sampler: an optional bf16 copy of the model, one generator
/// seeded by the options for the start noise and every per-step draw, and batches of at most BatchSize images whose
/// conditions the caller binds into a <see cref="Denoiser"/>.
/// </summary>
internal static class SamplingLoop
{
    public static DiffusionConfig DiffusionConfigOf(DenoiserInfo info)
    {
        var config = info.Diffusion.Count == 0 ? new DiffusionConfig { LearnSigma = info.Transformer.LearnSigma }
            : System.Text.Json.JsonSerializer.Deserialize<DiffusionConfig>(info.Diffusion.ToJsonString())!;
        config.Validate();
        return config;
    }

    /// <summary>All samples in one tensor (see <see cref="RunBatches"/>).</summary>
    public static Tensor Run(DiffusionTransformer source, TransformerConfig cfg, GaussianDiffusion diffusion, int count,
        SamplingOptions options, bool clip, Action<int, int, int>? onStep, Func<DiffusionTransformer, int, int, Denoiser> bindBatch)
    {
        var results = new List<Tensor>();
        try
        {
            foreach (var batch in RunBatches(source, cfg, diffusion, count, options, clip, onStep, bindBatch)) results.Add(batch);
            return torch.cat(results, 0);
        }
        finally
        {
            foreach (var r in results) r.Dispose();
        }
    }

    /// <summary>
    /// The samples one model batch at a time (the caller disposes each), so large sample sets (evaluation) never sit
    /// in memory whole; the values are the same as <see cref="Run"/>'s.
    /// </summary>
    /// <param name="bindBatch">(model to call, first image index, batch size) → the denoiser of that batch (guidance included).</param>
    public static IEnumerable<Tensor> RunBatches(DiffusionTransformer source, TransformerConfig cfg, GaussianDiffusion diffusion, int count,
        SamplingOptions options, bool clip, Action<int, int, int>? onStep, Func<DiffusionTransformer, int, int, Denoiser> bindBatch)
    {
        var model = source;
        bool converted = false;
        if (options.ComputeDtype != source.ParameterDtype)
        {
            // A bf16 copy for sampling: weights and activations in bf16, the schedule arithmetic in float32/float64.
            model = new DiffusionTransformer(cfg);
            IO.StateDict.Load(model, source.state_dict(), "the model in memory");
            model.to(options.ComputeDtype);
            converted = true;
        }
        model.eval();
        try
        {
            using var generator = new Generator(0, new Device(DeviceType.CPU));
            generator.manual_seed(options.Seed);
            var shape = new long[] { 0, cfg.InChannels, cfg.InputSize, cfg.InputSize };
            int done = 0;
            for (int start = 0; start < count; start += options.BatchSize)
            {
                Tensor samples;
                // no_grad is thread-local state: set it per batch, never across a yield.
                using (torch.no_grad())
                using (var scope = torch.NewDisposeScope())
                {
                    int n = Math.Min(options.BatchSize, count - start);
                    shape[0] = n;
                    var z = torch.randn(shape, generator: generator);
                    var denoiser = bindBatch(model, start, n);
                    int batchDone = done;
                    samples = Samplers.Sample(diffusion, options.Sampler, denoiser, z, generator, options.Eta, clip,
                        s => onStep?.Invoke(batchDone, s.Step, s.TotalSteps)).MoveToOuterDisposeScope();
                    done += n;
                }
                yield return samples;
            }
        }
        finally
        {
            if (converted) model.Dispose();
        }
    }
}
