using LatentDiffusion.IO;

namespace LatentDiffusion.Data;

/// <summary>
/// A folder of training images in either convention: captioned (a <c>metadata.jsonl</c>, the Hugging Face imagefolder
/// layout) or one subfolder per class (torchvision's ImageFolder). The metadata file decides, so a front end can take
/// "a folder" without asking which kind it is.
/// </summary>
public static class FolderDataset
{
    /// <summary>True when <paramref name="folder"/> holds a <c>metadata.jsonl</c> of captions.</summary>
    public static bool IsCaptioned(string folder) => File.Exists(Path.Combine(folder, CaptionedFolderDataset.MetadataFileName));

    /// <summary>Loads the folder as <see cref="CaptionedFolderDataset"/> when it is captioned, else as <see cref="ImageFolderDataset"/>.</summary>
    public static ImageDataset Load(string folder, int size, int channels, ResizeFilter filter = ResizeFilter.Bicubic, bool skipUnreadable = false)
    {
        if (!Directory.Exists(folder)) throw new LdmException($"image folder '{folder}' does not exist; check the path.");
        return IsCaptioned(folder)
            ? CaptionedFolderDataset.Load(folder, size, channels, filter, skipUnreadable)
            : ImageFolderDataset.Load(folder, size, channels, filter, skipUnreadable);
    }
}
