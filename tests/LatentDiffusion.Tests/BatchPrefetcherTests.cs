using LatentDiffusion.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests;

public class BatchPrefetcherTests
{
    static TrainingBatch Load(long step)
    {
        using var g = new Generator((ulong)(100 + step));
        return new TrainingBatch([step], torch.randn([2, 3], generator: g), torch.full([2], step, ScalarType.Int64));
    }

    [Fact]
    public void GivesEveryStepItsOwnBatchInOrderOrAfterAJump()
    {
        var threads = new HashSet<int>();
        using var prefetcher = new BatchPrefetcher(step => { lock (threads) threads.Add(Environment.CurrentManagedThreadId); return Load(step); });
        foreach (long step in new long[] { 0, 1, 2, 7, 8, 3 })
        {
            using var got = prefetcher.Take(step);
            using var want = Load(step);
            Assert.Equal(step, got.Indices[0]);
            Assert.Equal(0f, (got.X - want.X).abs().max().item<float>());
            Assert.Equal(step, got.Labels[0].item<long>());
        }
        // Batches after the first ones were built off the caller's thread.
        Assert.Contains(threads, id => id != Environment.CurrentManagedThreadId);
    }
}
