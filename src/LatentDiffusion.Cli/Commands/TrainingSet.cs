using LatentDiffusion.Autoencoders;
using LatentDiffusion.Cli.Grammar;
using LatentDiffusion.Data;
using LatentDiffusion.Training;
using Spectre.Console;

namespace LatentDiffusion.Cli.Commands;

/// <summary>
/// What `ldm train` trains on: images (pixel space) or autoencoder latents (latent space, the paper's setting), read
/// from a latent cache made by `ldm encode`, or encoded once from images with <c>--autoencoder</c> into the run folder.
/// </summary>
public sealed class TrainingSet : IDisposable
{
    /// <summary>Folder inside a run where <c>--autoencoder</c> caches the encoded training data.</summary>
    public const string LatentsFolder = "latents";

    public required ITrainingData Data { get; init; }
    public required string Source { get; init; }
    /// <summary>"pixel" or "latent".</summary>
    public required string Space { get; init; }
    /// <summary>Channels and side of one training example (image or latent).</summary>
    public required int Channels { get; init; }
    public required int Size { get; init; }
    public required IReadOnlyList<string> ClassNames { get; init; }
    public required bool HasLabels { get; init; }
    /// <summary>Every caption (null entries = none); empty when the data has no captions.</summary>
    public required IReadOnlyList<string?> Captions { get; init; }
    /// <summary>Latent space: the autoencoder that decodes samples (for grids and for the checkpoint's reference).</summary>
    public string? AutoencoderPath { get; init; }
    /// <summary>The resources to release with the set (the images or the cache).</summary>
    public required IDisposable Owner { get; init; }

    public long Count => Data.Count;
    public int NumClasses => ClassNames.Count;
    public bool HasCaptions => Captions.Any(c => c != null);
    public bool IsLatent => Space == "latent";

    /// <summary>Images in pixel space; <paramref name="owns"/>: the set disposes them.</summary>
    public static TrainingSet Pixels(ImageDataset images, bool owns = true) => new()
    {
        Data = new PixelTrainingData(images), Source = images.Source, Space = "pixel", Channels = images.Channels, Size = images.ImageSize,
        ClassNames = images.ClassNames, HasLabels = images.HasLabels, Captions = images.HasCaptions ? images.Captions : [], Owner = owns ? images : new NoOwner(),
    };

    sealed class NoOwner : IDisposable { public void Dispose() { } }

    /// <summary>A latent cache; <paramref name="autoencoderPath"/> (or the one the cache was encoded with) decodes samples.</summary>
    public static TrainingSet Latents(string dir, string? autoencoderPath)
    {
        var cache = LatentCache.Open(dir);
        try
        {
            string? ae = autoencoderPath ?? (string?)cache.Index["autoencoder"];
            if (string.IsNullOrEmpty(ae) || !File.Exists(ae))
                throw new LdmException($"the latent cache '{dir}' does not name an existing autoencoder ({(string.IsNullOrEmpty(ae) ? "none recorded" : ae)}); pass the one it was encoded with as --autoencoder.");
            var shape = cache.LatentShape;
            bool labelled = cache.ClassNames.Count > 0 && cache.Labels.NumberOfElements > 0 && cache.Labels.min().item<long>() >= 0;
            return new TrainingSet
            {
                Data = new LatentTrainingData(cache), Source = $"latent cache {dir} ({cache.Index["source"]})", Space = "latent",
                Channels = (int)shape[0], Size = (int)shape[1], ClassNames = cache.ClassNames, HasLabels = labelled,
                Captions = cache.Captions.Any(c => c != null) ? cache.Captions : [], AutoencoderPath = ae, Owner = cache,
            };
        }
        catch
        {
            cache.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The data behind <c>--data</c>: a latent cache folder (with its index.json), or images, encoded into
    /// <c>RUN/latents</c> first when <paramref name="autoencoderPath"/> is given (reused when it is complete and was
    /// made by the same autoencoder file from as many images).
    /// </summary>
    public static TrainingSet Load(DataSetSpec data, string? autoencoderPath, string runDir, Func<int?, int?, ImageDataset> loadImages)
    {
        if (data.Kind == DataSetKind.LatentCache)
        {
            if (autoencoderPath != null) CliParsing.ExistingFile(autoencoderPath, "--autoencoder");
            return Latents(data.Path!, autoencoderPath);
        }
        if (autoencoderPath == null) return Pixels(loadImages(null, null));

        CliParsing.ExistingFile(autoencoderPath, "--autoencoder");
        using var ae = AutoencoderKL.Load(autoencoderPath);
        using var images = loadImages(ae.Config.Resolution, ae.Config.InChannels);
        if (images.ImageSize != ae.Config.Resolution)
            throw new LdmException($"the autoencoder '{autoencoderPath}' takes {ae.Config.Resolution}x{ae.Config.Resolution} images but the data has {images.ImageSize}x{images.ImageSize}; use an autoencoder trained on this data (or --image-size {ae.Config.Resolution} for folders).");
        string dir = Path.Combine(runDir, LatentsFolder);
        if (!IsCacheOf(dir, autoencoderPath, images.Count))
        {
            double rate = 0;
            ConsoleProgress.Run($"encoding {images.Count:N0} images", images.Count, report =>
            {
                LatentCache.Write(dir, ae, images, progress: p => { rate = p.ImagesPerSecond; report(p.Done, $"{p.ImagesPerSecond:F0} images/s"); },
                    autoencoderSource: Path.GetFullPath(autoencoderPath));
                return 0;
            });
            AnsiConsole.MarkupLine(Markup.Escape($"encoded {images.Count:N0} images into {dir} ({rate:F0} images/s)"));
        }
        return Latents(dir, autoencoderPath);
    }

    static bool IsCacheOf(string dir, string autoencoderPath, long count)
    {
        string index = Path.Combine(dir, LatentCache.IndexFile);
        if (!File.Exists(index)) return false;
        try
        {
            var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(index))!;
            return (string?)json["autoencoder"] == Path.GetFullPath(autoencoderPath) && (long?)json["count"] == count
                && File.GetLastWriteTimeUtc(autoencoderPath) <= File.GetLastWriteTimeUtc(index);
        }
        catch (System.Text.Json.JsonException) { return false; }
    }

    public void Dispose() => Owner.Dispose();
}
