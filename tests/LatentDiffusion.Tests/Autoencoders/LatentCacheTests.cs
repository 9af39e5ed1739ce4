using LatentDiffusion.Autoencoders;
using LatentDiffusion.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests.Autoencoders;

public sealed class LatentCacheTests
{
    static AutoencoderKL SmallAe()
    {
        var model = new AutoencoderKL(new AutoencoderConfig { Ch = 32, ChMult = [1, 2], NumResBlocks = 1, Resolution = 32 }) { LatentScale = 0.5 };
        model.ResetParameters(new Generator(9));
        return model;
    }

    [Fact]
    public void RoundTripKeepsMeansStdsLabelsCaptionsAndFlips()
    {
        using var data = ShapesDataset.Generate(10, seed: 4, text: true);
        using var ae = SmallAe();
        string dir = RepoPaths.NewTempDir("latent-cache");
        var seen = new List<LatentCacheProgress>();
        long written = LatentCache.Write(dir, ae, data, flip: true, batchSize: 4, shardSize: 6, progress: seen.Add);
        Assert.Equal(20, written);
        Assert.Equal(20, seen[^1].Done);

        using var cache = LatentCache.Open(dir);
        Assert.Equal(20, cache.Count);
        Assert.Equal(new long[] { 4, 16, 16 }, cache.LatentShape);
        Assert.Equal(0.5, cache.LatentScale);
        // Shard 0 holds images 0..5 then their mirrors; shard 1 images 6..9 then theirs.
        using var _ = torch.no_grad();
        using var batch = data.GetBatch([0, 7]);
        var posterior = ae.Encode(batch.Images);
        var mirrored = ae.Encode(batch.Images.flip(3));
        Assert.True(cache.Mean[0].allclose(posterior.Mean[0], rtol: 1e-4, atol: 1e-5));
        Assert.True(cache.Std[13].allclose(posterior.Std[1], rtol: 1e-4, atol: 1e-5)); // image 7: shard 1 starts at entry 12, originals first
        Assert.True(cache.Mean[6].allclose(mirrored.Mean[0], rtol: 1e-4, atol: 1e-5)); // mirror of image 0 follows shard 0's originals
        Assert.Equal(data.Captions[7], cache.Captions[13]);
        Assert.Equal(data.Captions[7], cache.Captions[17]);

        using var means = cache.GetBatch([0], generator: null);
        Assert.True(means.Latents[0].allclose(posterior.Mean[0] * 0.5, rtol: 1e-4, atol: 1e-5));
        using var s1 = cache.GetBatch([0, 13], new Generator(1));
        using var s2 = cache.GetBatch([0, 13], new Generator(1));
        Assert.True(s1.Latents.equal(s2.Latents).all().item<bool>());
        Assert.False(s1.Latents[0].allclose(means.Latents[0], rtol: 1e-4, atol: 1e-5));
        Assert.Equal(cache.Labels[13].item<long>(), s1.Labels[1].item<long>());
    }

    [Fact]
    public void HalfWrittenCacheIsRefused()
    {
        using var data = ShapesDataset.Generate(4, seed: 5, text: false);
        using var ae = SmallAe();
        string dir = RepoPaths.NewTempDir("latent-cache-half");
        LatentCache.Write(dir, ae, data, batchSize: 4);
        // An interrupted re-encoding: the old index was removed first, some shards exist.
        File.Delete(Path.Combine(dir, LatentCache.IndexFile));
        var e = Assert.Throws<LdmException>(() => LatentCache.Open(dir));
        Assert.Contains("did not finish", e.Message);
        Assert.Throws<LdmException>(() => LatentCache.Open(Path.Combine(dir, "missing")));
    }
}
