using LatentDiffusion.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Pipelines;

/// <summary>
/// What a <see cref="DiffusionPipeline"/> call returns: the images (float32 (N, C, H, W) in [-1, 1], on the CPU) with
/// the class id or prompt each was made from, ready to save as PNGs, as a grid, or to use as tensors. A latent model
/// run without its autoencoder returns its latents instead (<see cref="IsLatent"/>); those cannot be saved as images.
/// </summary>
public sealed class GeneratedImages : IDisposable
{
    internal GeneratedImages(Tensor images, bool isLatent, IReadOnlyList<int>? classIds, IReadOnlyList<string>? prompts,
        IReadOnlyList<string> classNames)
    {
        Images = images;
        IsLatent = isLatent;
        ClassIds = classIds;
        Prompts = prompts;
        _classNames = classNames;
    }

    readonly IReadOnlyList<string> _classNames;

    /// <summary>float32 (N, C, H, W) on the CPU: images in [-1, 1], or scaled latents when <see cref="IsLatent"/>.</summary>
    public Tensor Images { get; }
    /// <summary>True when <see cref="Images"/> holds undecoded latents (a latent model loaded without its autoencoder).</summary>
    public bool IsLatent { get; }
    /// <summary>The class id of each image (class models), else null.</summary>
    public IReadOnlyList<int>? ClassIds { get; }
    /// <summary>The prompt of each image (text models), else null.</summary>
    public IReadOnlyList<string>? Prompts { get; }
    /// <summary>Number of images.</summary>
    public int Count => (int)Images.shape[0];

    /// <summary>What image <paramref name="index"/> shows: its prompt, its class name (or <c>class7</c>), or <c>unconditional</c>.</summary>
    public string Caption(int index) =>
        Prompts is { } p ? p[index]
        : ClassIds is { } c ? (c[index] < _classNames.Count ? _classNames[c[index]] : $"class{c[index]}")
        : "unconditional";

    /// <summary>The images as uint8 (N, C, H, W), quantised as they are saved: floor(clamp(x·127.5 + 128, 0, 255)).</summary>
    public Tensor ToBytes()
    {
        RequireImages();
        return Images.mul(127.5).add(128.0).clamp(0.0, 255.0).floor().to(ScalarType.Byte);
    }

    /// <summary>
    /// Writes one PNG per image into <paramref name="folder"/> (created if missing), named by index, class or prompt;
    /// returns the paths. All or nothing: when one cannot be written (a full disk, say) the ones written before it are
    /// removed again and the <see cref="LdmException"/> says so.
    /// </summary>
    public IReadOnlyList<string> Save(string folder)
    {
        RequireImages();
        WriteFailure.CreateFolder(folder);
        var paths = new List<string>();
        try
        {
            for (int i = 0; i < Count; i++)
            {
                string name = FileNamePart(Caption(i));
                string label = ClassIds is { } ids && Prompts is null ? $"{ids[i]:D3}_" : "";
                string path = Path.Combine(folder, $"{i:D5}_{label}{name}.png");
                using var image = Images[i];
                ImageFile.Write(path, image);
                paths.Add(path);
            }
        }
        catch (LdmException e) when (paths.Count > 0)
        {
            // Half a sample set looks like a whole one of another --num; better none, and say so.
            throw new LdmException($"{e.Message.TrimEnd('.')} (removed the {Removed(paths)} images written before it).", e);
        }
        return paths;
    }

    /// <summary>Deletes files written by a save that then failed; returns how many were removed.</summary>
    static int Removed(IEnumerable<string> paths)
    {
        int n = 0;
        foreach (var p in paths)
        {
            try { File.Delete(p); n++; }
            catch (Exception e) when (WriteFailure.IsWriteError(e)) { /* a file that cannot be removed stays; the count says how many went */ }
        }
        return n;
    }

    /// <summary>Writes the images as one PNG grid, <paramref name="columns"/> per row (default: a square).</summary>
    public string SaveGrid(string path, int? columns = null)
    {
        RequireImages();
        if (columns is < 1) throw new LdmOptionException(nameof(GeneratedImages), "columns", columns, "be at least 1");
        ImageGrid.Save(path, Images, columns ?? (int)Math.Ceiling(Math.Sqrt(Count)));
        return path;
    }

    /// <summary>Image <paramref name="index"/> encoded as PNG in memory, with <paramref name="text"/> as its text chunks (<see cref="PngText"/>).</summary>
    public byte[] Png(int index, IEnumerable<KeyValuePair<string, string>>? text = null)
    {
        RequireImages();
        if (index < 0 || index >= Count) throw new LdmException($"image {index} is outside these {Count} images.");
        using var image = Images[index];
        return WithText(ImageFile.Encode(ImagePixels.FromTensor(image), SkiaSharp.SKEncodedImageFormat.Png), text);
    }

    /// <summary>The images as one PNG grid in memory (as <see cref="SaveGrid"/> writes it), with <paramref name="text"/> as its text chunks.</summary>
    public byte[] GridPng(int? columns = null, IEnumerable<KeyValuePair<string, string>>? text = null)
    {
        RequireImages();
        if (columns is < 1) throw new LdmOptionException(nameof(GeneratedImages), "columns", columns, "be at least 1");
        using var grid = ImageGrid.Make(Images, columns ?? (int)Math.Ceiling(Math.Sqrt(Count)));
        return WithText(ImageFile.Encode(ImagePixels.FromTensor(grid), SkiaSharp.SKEncodedImageFormat.Png), text);
    }

    static byte[] WithText(byte[] png, IEnumerable<KeyValuePair<string, string>>? text) => text is null ? png : PngText.Add(png, text);

    void RequireImages()
    {
        if (IsLatent)
            throw new LdmException("these samples are latents of a latent model loaded without its autoencoder; load the pipeline with the autoencoder to get images.");
    }

    static string FileNamePart(string caption)
    {
        var name = new string(caption.Select(ch => char.IsLetterOrDigit(ch) ? ch : '-').ToArray());
        return name.Length > 60 ? name[..60] : name;
    }

    /// <summary>Frees the image tensor.</summary>
    public void Dispose() => Images.Dispose();
}
