using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using LatentDiffusion.Autoencoders;
using LatentDiffusion.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Data;

/// <summary>A batch of cached latents, already multiplied by the latent scale factor.</summary>
/// <param name="latents">The scaled latents; owned by the batch.</param>
/// <param name="labels">The labels; owned by the batch.</param>
/// <param name="captions">One caption per latent, null where there is none.</param>
public sealed class LatentBatch(Tensor latents, Tensor labels, string?[] captions) : IDisposable
{
    /// <summary>float32 (B, C, h, w): scale · z with z sampled from (or the mean of) the posterior.</summary>
    public Tensor Latents { get; } = latents;
    /// <summary>int64 (B), −1 where unlabelled.</summary>
    public Tensor Labels { get; } = labels;
    /// <summary>One caption per latent, null where there is none.</summary>
    public string?[] Captions { get; } = captions;
    /// <summary>Frees the latents and labels.</summary>
    public void Dispose() { Latents.Dispose(); Labels.Dispose(); }
}

/// <summary>Progress of <see cref="LatentCache.Write"/>.</summary>
/// <param name="Done">Entries encoded so far (mirrored copies count).</param>
/// <param name="Total">Entries to encode.</param>
/// <param name="ImagesPerSecond">Encoding throughput so far.</param>
public readonly record struct LatentCacheProgress(long Done, long Total, double ImagesPerSecond);

/// <summary>
/// A data set encoded once by the autoencoder: per image the posterior mean and std (so training can draw fresh samples
/// z = mean + std·ε each epoch, as LDM does), its label and caption, optionally plus a left-right mirrored copy.
/// Folder layout: <c>shard_NNNNN.safetensors</c> (tensors <c>mean</c>, <c>std</c>, <c>labels</c>; captions as JSON in the
/// metadata) and <c>index.json</c>, written atomically after every shard is complete. A folder without the index is an
/// interrupted encoding and is refused; re-encoding deletes the old index first.
/// </summary>
public sealed class LatentCache : IDisposable
{
    /// <summary>The index file name (written last, so its presence marks a finished cache) and its format tag.</summary>
    public const string IndexFile = "index.json", Format = "ldm-latent-cache/1";

    /// <summary>float32 (N, C, h, w): posterior means, unscaled.</summary>
    public Tensor Mean { get; }
    /// <summary>float32 (N, C, h, w): posterior standard deviations, unscaled.</summary>
    public Tensor Std { get; }
    /// <summary>int64 (N); −1 where unlabelled.</summary>
    public Tensor Labels { get; }
    /// <summary>One caption per entry, null where there is none.</summary>
    public string?[] Captions { get; }
    /// <summary>The autoencoder's latent scale factor, applied by <see cref="GetBatch"/>.</summary>
    public double LatentScale { get; }
    /// <summary>Class names by label id (empty when unlabelled).</summary>
    public IReadOnlyList<string> ClassNames { get; }
    /// <summary>The parsed <c>index.json</c>: source, image size, flip, autoencoder and its config, shards.</summary>
    public JsonObject Index { get; }
    /// <summary>Number of cached entries (N), mirrored copies included.</summary>
    public long Count => Mean.shape[0];
    /// <summary>(C, h, w) of one latent.</summary>
    public long[] LatentShape => Mean.shape[1..];

    LatentCache(Tensor mean, Tensor std, Tensor labels, string?[] captions, double scale, IReadOnlyList<string> classNames, JsonObject index)
    {
        Mean = mean; Std = std; Labels = labels; Captions = captions; LatentScale = scale; ClassNames = classNames; Index = index;
    }

    /// <summary>Encodes every image of <paramref name="data"/> (and its mirror image with <paramref name="flip"/>) into
    /// <paramref name="dir"/>. Returns the number of cached entries.</summary>
    public static long Write(string dir, AutoencoderKL autoencoder, ImageDataset data, bool flip = false, int batchSize = 64,
        int shardSize = 50_000, Action<LatentCacheProgress>? progress = null, string autoencoderSource = "")
    {
        if (batchSize <= 0 || shardSize <= 0) throw new LdmException($"batch size and shard size must be positive, got {batchSize} and {shardSize}.");
        if (data.Channels != autoencoder.Config.InChannels)
            throw new LdmException($"the data has {data.Channels}-channel images but the autoencoder takes {autoencoder.Config.InChannels}; use an autoencoder trained on this kind of data.");
        Directory.CreateDirectory(dir);
        string indexPath = Path.Combine(dir, IndexFile);
        // The old index goes first: from here until the new one is written, the folder is (visibly) incomplete.
        if (File.Exists(indexPath)) File.Delete(indexPath);
        foreach (var old in Directory.EnumerateFiles(dir, "shard_*.safetensors")) File.Delete(old);

        autoencoder.eval();
        long n = data.Count, total = flip ? 2 * n : n;
        var shards = new JsonArray();
        var sw = Stopwatch.StartNew();
        long done = 0;
        int shardIndex = 0;
        for (long start = 0; start < n; start += shardSize)
        {
            long end = Math.Min(n, start + shardSize);
            var means = new List<Tensor>(); var stds = new List<Tensor>(); var labels = new List<Tensor>();
            var captions = new List<string?>();
            try
            {
                foreach (bool mirrored in flip ? new[] { false, true } : new[] { false })
                    for (long b = start; b < end; b += batchSize)
                    {
                        using var scope = torch.NewDisposeScope();
                        using var _ = torch.no_grad();
                        var idx = Enumerable.Range(0, (int)Math.Min(batchSize, end - b)).Select(i => b + i).ToArray();
                        using var batch = data.GetBatch(idx);
                        var x = mirrored ? batch.Images.flip(3) : batch.Images;
                        var posterior = autoencoder.Encode(x);
                        means.Add(posterior.Mean.to(ScalarType.Float32).cpu().contiguous().MoveToOuterDisposeScope());
                        stds.Add(posterior.Std.to(ScalarType.Float32).cpu().contiguous().MoveToOuterDisposeScope());
                        labels.Add(batch.Labels.clone().MoveToOuterDisposeScope());
                        captions.AddRange(batch.Captions);
                        done += idx.Length;
                        progress?.Invoke(new LatentCacheProgress(done, total, done / Math.Max(sw.Elapsed.TotalSeconds, 1e-9)));
                    }
                string file = $"shard_{shardIndex:D5}.safetensors";
                using (var mean = torch.cat(means, 0)) using (var std = torch.cat(stds, 0)) using (var lab = torch.cat(labels, 0))
                {
                    SafetensorsWriter.Write(Path.Combine(dir, file), new Dictionary<string, Tensor> { ["mean"] = mean, ["std"] = std, ["labels"] = lab },
                        new Dictionary<string, string> { ["captions"] = JsonSerializer.Serialize(captions) });
                    shards.Add(new JsonObject { ["file"] = file, ["count"] = mean.shape[0] });
                }
                shardIndex++;
            }
            finally { foreach (var t in means.Concat(stds).Concat(labels)) t.Dispose(); }
        }
        long h = data.ImageSize / autoencoder.Config.DownsampleFactor;
        var index = new JsonObject
        {
            ["format"] = Format,
            ["count"] = total,
            ["latent_shape"] = new JsonArray(autoencoder.Config.EmbedDim, h, h),
            ["latent_scale"] = autoencoder.LatentScale,
            ["flip"] = flip,
            ["source"] = data.Source,
            ["image_size"] = data.ImageSize,
            ["class_names"] = new JsonArray(data.ClassNames.Select(c => (JsonNode)JsonValue.Create(c)!).ToArray()),
            ["autoencoder"] = autoencoderSource,
            ["autoencoder_config"] = autoencoder.Config.ToJson(),
            ["shards"] = shards,
            ["seconds"] = sw.Elapsed.TotalSeconds,
        };
        AtomicFile.WriteAllText(indexPath, index.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        return total;
    }

    /// <summary>True when <paramref name="dir"/> is a finished latent cache (it holds the index, written last).</summary>
    public static bool IsCache(string dir) => File.Exists(Path.Combine(dir, IndexFile));

    /// <summary>Loads a complete cache into memory; refuses a folder without its index (an interrupted encoding).</summary>
    public static LatentCache Open(string dir)
    {
        string indexPath = Path.Combine(dir, IndexFile);
        if (!Directory.Exists(dir)) throw new LdmException($"latent cache folder '{dir}' does not exist; create it with `ldm encode`.");
        if (!File.Exists(indexPath))
            throw new LdmException($"'{dir}' has no {IndexFile}, so its encoding did not finish; run `ldm encode` again into this folder.");
        JsonObject index;
        try { index = JsonNode.Parse(File.ReadAllText(indexPath)) as JsonObject ?? throw new JsonException("not an object"); }
        catch (JsonException e) { throw new LdmException($"'{indexPath}' is unreadable ({e.Message.Split('\n')[0]}); run `ldm encode` again."); }
        if ((string?)index["format"] != Format)
            throw new LdmException($"'{indexPath}' is not a {Format} index; run `ldm encode` again.");
        var means = new List<Tensor>(); var stds = new List<Tensor>(); var labels = new List<Tensor>(); var captions = new List<string?>();
        try
        {
            foreach (var shard in index["shards"]!.AsArray())
            {
                string path = Path.Combine(dir, (string)shard!["file"]!);
                using var f = SafetensorsFile.Open(path);
                var m = f.Read("mean");
                means.Add(m); stds.Add(f.Read("std")); labels.Add(f.Read("labels"));
                var caps = JsonSerializer.Deserialize<string?[]>(f.Metadata.GetValueOrDefault("captions", "[]")) ?? [];
                if (caps.Length != m.shape[0] || m.shape[0] != shard["count"]!.GetValue<long>())
                    throw new LdmException($"'{path}' does not hold the {shard["count"]} entries its index lists; run `ldm encode` again.");
                captions.AddRange(caps);
            }
            long count = index["count"]!.GetValue<long>();
            var mean = torch.cat(means, 0); var std = torch.cat(stds, 0); var lab = torch.cat(labels, 0);
            if (mean.shape[0] != count) throw new LdmException($"'{dir}' holds {mean.shape[0]} latents but its index says {count}; run `ldm encode` again.");
            var classNames = index["class_names"]?.AsArray().Select(c => (string)c!).ToList() ?? [];
            return new LatentCache(mean, std, lab, captions.ToArray(), index["latent_scale"]!.GetValue<double>(), classNames, index);
        }
        finally { foreach (var t in means.Concat(stds).Concat(labels)) t.Dispose(); }
    }

    /// <summary>Latents of the entries at <paramref name="indices"/>, times the latent scale: sampled
    /// z = mean + std·ε with ε from <paramref name="generator"/>, or the means when <paramref name="generator"/> is null.</summary>
    public LatentBatch GetBatch(long[] indices, Generator? generator)
    {
        foreach (long i in indices)
            if (i < 0 || i >= Count) throw new ArgumentOutOfRangeException(nameof(indices), $"index {i} is outside the cache of {Count} latents");
        using var scope = torch.NewDisposeScope();
        // The cache lives on the CPU; a trainer moves each batch to its device.
        var idx = torch.tensor(indices, ScalarType.Int64, device: torch.CPU);
        var mean = Mean.index_select(0, idx);
        var z = generator is null ? mean : mean + Std.index_select(0, idx) * torch.randn(mean.shape, generator: generator, device: torch.CPU);
        var latents = (z * LatentScale).MoveToOuterDisposeScope();
        return new LatentBatch(latents, Labels.index_select(0, idx).MoveToOuterDisposeScope(), indices.Select(i => Captions[i]).ToArray());
    }

    /// <summary>Frees the cached tensors.</summary>
    public void Dispose() { Mean.Dispose(); Std.Dispose(); Labels.Dispose(); }
}
