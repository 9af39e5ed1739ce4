using LatentDiffusion.Data;
using LatentDiffusion.IO;

namespace LatentDiffusion.Cli.Grammar;

/// <summary>The images a <see cref="DataSetSpec"/> names, loaded through the library's Data/ API.</summary>
public static class DataSetLoader
{
    /// <param name="defaultCount">Images to generate for shapes when the spec gives no count.</param>
    /// <param name="defaultSeed">Seed of generated shapes when the spec gives none (the command's --seed).</param>
    /// <param name="size">Image side for folders (center crop + resize).</param>
    /// <param name="channels">Channels for folders (1 or 3).</param>
    public static ImageDataset Load(DataSetSpec spec, int defaultCount, long defaultSeed, int size, int channels, bool skipUnreadable = false) => spec.Kind switch
    {
        DataSetKind.Shapes or DataSetKind.ShapesText =>
            ShapesDataset.Generate(spec.Count ?? defaultCount, spec.Seed ?? (int)(defaultSeed & 0x7FFFFFFF), text: spec.Kind == DataSetKind.ShapesText,
                spec.TwoShapePercent ?? ShapesDataset.DefaultTwoShapePercent),
        DataSetKind.FashionMnist => FashionMnist.Load(spec.FashionMnistFolder, spec.Train),
        DataSetKind.ImageFolder or DataSetKind.CaptionedFolder => FolderDataset.Load(spec.Path!, size, channels, ResizeFilter.Bicubic, skipUnreadable),
        _ => throw new LdmException($"'{spec.Text}' is not a set of images; give {DataSetSpec.Syntax} without the cache or .npz."),
    };
}
