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
        using var nextStarted = new ManualResetEventSlim();
        using var prefetcher = new BatchPrefetcher(step => { if (step == 1) nextStarted.Set(); return Load(step); });
        using (prefetcher.Take(0)) { }
        // Step 1's batch is being built while the caller has not asked for it yet.
        Assert.True(nextStarted.Wait(TimeSpan.FromSeconds(30)), "the next batch was not built in the background");
        foreach (long step in new long[] { 1, 2, 7, 8, 3 })
        {
            using var got = prefetcher.Take(step);
            using var want = Load(step);
            Assert.Equal(step, got.Indices[0]);
            Assert.Equal(0f, (got.X - want.X).abs().max().item<float>());
            Assert.Equal(step, got.Labels[0].item<long>());
        }
    }
}
