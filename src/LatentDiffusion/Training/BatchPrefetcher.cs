using static TorchSharp.torch;

namespace LatentDiffusion.Training;

/// <summary>
/// Assembles the batch of step s + 1 on a background thread while step s runs on the model, so data loading and
/// augmentation (image decoding, flips, posterior draws of cached latents) overlap the forward and backward passes.
/// Every batch depends only on its step (indices from <see cref="DataOrder"/>, random draws from the step's generator,
/// seeded by (seed, step), which the batch then hands on), so prefetching changes no number and a resumed run reads
/// the same batches.
/// </summary>
internal sealed class BatchPrefetcher : IDisposable
{
    readonly Func<long, TrainingBatch> _load;
    Task<TrainingBatch>? _next;
    long _nextStep = -1;

    /// <param name="load">Builds the batch of a step; runs on a worker thread, its tensors are handed to the caller.</param>
    public BatchPrefetcher(Func<long, TrainingBatch> load) => _load = load;

    /// <summary>The batch of <paramref name="step"/> (waiting for it if it is still being built); starts building step + 1.
    /// The caller owns (and disposes) the returned tensors.</summary>
    public TrainingBatch Take(long step)
    {
        TrainingBatch batch;
        if (_next != null && _nextStep == step) batch = _next.GetAwaiter().GetResult();
        else
        {
            DiscardPending();
            batch = Build(step);
        }
        _nextStep = step + 1;
        _next = Task.Run(() => Build(step + 1));
        return batch;
    }

    TrainingBatch Build(long step)
    {
        // The worker thread has no dispose scope: the batch's tensors live until the consumer disposes the batch.
        return _load(step);
    }

    void DiscardPending()
    {
        if (_next == null) return;
        try
        {
            _next.GetAwaiter().GetResult().Dispose();
        }
        catch (Exception) { /* a failed prefetch of a batch nobody needs */ }
        _next = null;
    }

    public void Dispose() => DiscardPending();
}

/// <summary>
/// One step's examples: their data indices, inputs (N, C, H, W) and labels (N), and optionally the step's random
/// generator in the state the data draws left it, for the step's remaining draws (timesteps, noise, label dropout).
/// </summary>
internal sealed record TrainingBatch(long[] Indices, Tensor X, Tensor Labels, Generator? Generator = null) : IDisposable
{
    public void Dispose() { X.Dispose(); Labels.Dispose(); Generator?.Dispose(); }
}
