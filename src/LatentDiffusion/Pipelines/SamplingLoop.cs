using LatentDiffusion.Denoisers;
using LatentDiffusion.Diffusion;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Pipelines;

/// <summary>
/// The reverse process over batches of at most BatchSize images: one CPU generator seeded by the options draws the start
/// noise of every batch and every per-step draw (moved to the network's device), so the same seed gives the same
/// images on any device. The caller binds each batch's conditions into a <see cref="Denoiser"/>.
/// <para>A part of the images (<c>images</c>, whole batches) can be made alone, as one rank of a sharded run does: the
/// batches before it are replayed with a denoiser that returns zeros, which makes the same generator draws (the start
/// noise and every step's noise; the draws never depend on the network's output) at a tiny fraction of the cost, so
/// each image equals the one a full run makes.</para>
/// </summary>
internal static class SamplingLoop
{
    /// <param name="cfg">The backbone: the shape of one sample.</param>
    /// <param name="device">Where the denoiser runs (the noise is drawn on the CPU, then moved).</param>
    /// <param name="diffusion">The diffusion process to reverse.</param>
    /// <param name="count">Samples in all, drawn in batches of the options' batch size.</param>
    /// <param name="options">Sampler, steps, seed and batch size.</param>
    /// <param name="clip">Clip the predicted x0 to [-1, 1] at every step.</param>
    /// <param name="bindBatch">(first image index, batch size) → the denoiser of that batch (guidance included).</param>
    /// <param name="onStep">(images done before this batch, batch size, step, steps per batch) after every reverse step.</param>
    /// <param name="images">The images to make (null: all); its start must be a multiple of the batch size.</param>
    public static IEnumerable<Tensor> RunBatches(IBackboneConfig cfg, Device device, GaussianDiffusion diffusion, int count,
        SamplingOptions options, bool clip, Action<int, int, int, int>? onStep, Func<int, int, Denoiser> bindBatch, Distributed.Shard? images = null)
    {
        var part = images ?? new Distributed.Shard(0, count);
        if (part.Start % options.BatchSize != 0 || part.Start < 0 || part.End > count)
            throw new LdmException($"images {part.Start}..{part.End} are not a run of whole batches of {options.BatchSize} within {count}; shard with Shard.OfBatches.");
        using var generator = new Generator(0, new Device(DeviceType.CPU));
        generator.manual_seed(options.Seed);
        var shape = new long[] { 0, cfg.InChannels, cfg.InputSize, cfg.InputSize };
        for (int start = 0; start < part.End; start += options.BatchSize)
        {
            if (start < part.Start)
            {
                Replay(cfg, diffusion, options, clip, generator, shape, Math.Min(options.BatchSize, count - start));
                continue;
            }
            Tensor samples;
            // no_grad is thread-local state: set it per batch, never across a yield.
            using (torch.no_grad())
            using (var scope = torch.NewDisposeScope())
            {
                int n = Math.Min(options.BatchSize, count - start);
                shape[0] = n;
                var z = torch.randn(shape, generator: generator, device: torch.CPU).to(device);
                var denoiser = bindBatch(start, n);
                int done = start;
                samples = Samplers.Sample(diffusion, options.Sampler, denoiser, z, generator, options.Eta, clip,
                    s => onStep?.Invoke(done, n, s.Step, s.TotalSteps)).MoveToOuterDisposeScope();
            }
            yield return samples;
        }
    }

    /// <summary>Makes a batch's generator draws without the network (on the CPU, where the draws are made anyway).</summary>
    static void Replay(IBackboneConfig cfg, GaussianDiffusion diffusion, SamplingOptions options, bool clip, Generator generator, long[] shape, int n)
    {
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        shape[0] = n;
        var z = torch.randn(shape, generator: generator, device: torch.CPU);
        Denoiser zeros = (x, t) => torch.zeros([x.shape[0], cfg.OutChannels, x.shape[2], x.shape[3]], dtype: x.dtype, device: x.device);
        Samplers.Sample(diffusion, options.Sampler, zeros, z, generator, options.Eta, clip);
    }
}
