using LatentDiffusion.Data;

namespace LatentDiffusion.Cli.Commands;

/// <summary>
/// The <c>--data</c> argument of the training and encoding commands: <c>shapes</c> (class form), <c>shapes-text</c>
/// (captioned form), <c>fashion-mnist</c> (Debian's package folder, or <c>fashion-mnist:FOLDER</c>), a folder with a
/// <c>metadata.jsonl</c> (captioned), or a folder with one subfolder per class.
/// </summary>
public static class DataSpec
{
    public const string Help = "Data: shapes, shapes-text, fashion-mnist[:FOLDER], a captioned folder (metadata.jsonl) or a class-per-subfolder image folder.";

    /// <param name="count">Images to generate for the built-in shapes set.</param>
    /// <param name="size">Image side for folders (center crop + resize).</param>
    /// <param name="channels">Channels for folders (1 or 3).</param>
    public static ImageDataset Load(string spec, int count, int seed, int size, int channels)
    {
        switch (spec.ToLowerInvariant())
        {
            case "shapes": return ShapesDataset.Generate(count, seed, text: false);
            case "shapes-text": return ShapesDataset.Generate(count, seed, text: true);
            case "fashion-mnist": return FashionMnist.Load();
        }
        if (spec.StartsWith("fashion-mnist:", StringComparison.OrdinalIgnoreCase)) return FashionMnist.Load(spec["fashion-mnist:".Length..]);
        if (!Directory.Exists(spec))
            throw new LdmException($"--data '{spec}' is neither a built-in data set (shapes, shapes-text, fashion-mnist) nor an existing folder; pass one of them.");
        return File.Exists(Path.Combine(spec, "metadata.jsonl"))
            ? CaptionedFolderDataset.Load(spec, size, channels)
            : ImageFolderDataset.Load(spec, size, channels);
    }
}
