using LatentDiffusion.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Data;

/// <summary>
/// An image folder with one subfolder per class, as torchvision's ImageFolder: classes are the subfolder names in
/// ordinal (byte-wise, as Python's sorted) order, label = index in that order; files are found recursively inside each
/// class folder, in ordinal path order, keeping only image extensions (<see cref="ImageFile.Extensions"/>).
/// </summary>
public static class ImageFolderDataset
{
    /// <summary>The class names (sorted subfolder names) of <paramref name="folder"/>.</summary>
    public static IReadOnlyList<string> FindClasses(string folder)
    {
        CheckFolder(folder);
        var classes = Directory.GetDirectories(folder).Select(Path.GetFileName).Select(n => n!)
            .OrderBy(n => n, StringComparer.Ordinal).ToList();
        if (classes.Count == 0)
            throw new LdmException($"'{folder}' has no class subfolders; put the images in one subfolder per class (e.g. {folder}/cat/1.png), or use a captioned folder with metadata.jsonl.");
        return classes;
    }

    /// <summary>
    /// Loads every image, center-cropped and resized to <paramref name="size"/> × <paramref name="size"/> with
    /// <paramref name="channels"/> channels. An unreadable file is an error naming it, unless
    /// <paramref name="skipUnreadable"/>: then it is skipped and counted in <see cref="ImageDataset.SkippedCount"/>.
    /// <paramref name="minSize"/> &gt; 0 treats images smaller than that as unreadable.
    /// </summary>
    public static ImageDataset Load(string folder, int size, int channels, ResizeFilter filter = ResizeFilter.Bicubic,
        bool skipUnreadable = false, int minSize = 0)
    {
        var classes = FindClasses(folder);
        var files = new List<string>();
        var labels = new List<long>();
        for (int k = 0; k < classes.Count; k++)
        {
            string dir = Path.Combine(folder, classes[k]);
            var found = Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories)
                .Where(ImageFile.HasImageExtension)
                .OrderBy(p => p, StringComparer.Ordinal).ToList();
            if (found.Count == 0)
                throw new LdmException($"class folder '{dir}' holds no images ({string.Join(", ", ImageFile.Extensions.Order())}); add images or remove the folder.");
            files.AddRange(found);
            labels.AddRange(Enumerable.Repeat((long)k, found.Count));
        }

        var (images, kept) = ImageFileLoader.Load(files, size, channels, filter, minSize, skipUnreadable);
        int skipped = kept.Count(k => !k);
        if (images.shape[0] == 0)
        {
            images.Dispose();
            throw new LdmException($"none of the {files.Count} images in '{folder}' could be read ({skipped} skipped as unreadable); check the files.");
        }
        var keptLabels = labels.Where((_, i) => kept[i]).ToArray();
        return new ImageDataset(images, torch.tensor(keptLabels, ScalarType.Int64, device: torch.CPU), new string?[keptLabels.Length],
            classes, folder, skipped);
    }

    internal static void CheckFolder(string folder)
    {
        if (File.Exists(folder))
            throw new LdmException($"'{folder}' is a file, not a folder; pass the folder that holds the images.");
        if (!Directory.Exists(folder))
            throw new LdmException($"image folder '{folder}' does not exist; check the path.");
    }
}
