using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Diffusion;

/// <summary>
/// Draws the training timesteps of a batch uniformly from [0, T) (DiT's <c>UniformSampler</c>), from an explicit
/// generator so a training run is reproducible and resumable. The importance weights of a uniform sampler are all 1.
/// </summary>
internal sealed class TimestepSampler
{
    public int NumTimesteps { get; }

    public TimestepSampler(int numTimesteps)
    {
        if (numTimesteps < 1) throw new LdmException($"the timestep sampler needs at least 1 timestep, got {numTimesteps}; build it from the training diffusion.");
        NumTimesteps = numTimesteps;
    }

    public TimestepSampler(GaussianDiffusion diffusion) : this(diffusion.NumTimesteps) { }

    /// <summary>(timesteps int64 (N,), weights float32 (N,) = 1) on <paramref name="device"/> (null = cpu). The draw is
    /// made with the CPU <paramref name="generator"/> and moved, so a seed gives the same timesteps on every device.</summary>
    public (Tensor Timesteps, Tensor Weights) Sample(int batchSize, Generator generator, Device? device = null)
    {
        if (batchSize < 1) throw new LdmException($"the batch size must be at least 1, got {batchSize}; set a positive batch size.");
        var target = device ?? torch.CPU;
        var drawn = torch.randint(0, NumTimesteps, [batchSize], dtype: ScalarType.Int64, device: torch.CPU, generator: generator);
        var t = target.type == DeviceType.CPU ? drawn : drawn.to(target, disposeAfter: true);
        var w = torch.ones(batchSize, dtype: ScalarType.Float32, device: target);
        return (t, w);
    }
}
