using TorchSharp;

namespace LatentDiffusion.Data;

/// <summary>
/// Fashion-MNIST (Zalando; 28×28 gray, 10 classes, 60 000 train / 10 000 test) from a folder of its four IDX files,
/// by default Debian's <c>dataset-fashion-mnist</c> package (scripts/install-fashion-mnist.sh installs it).
/// </summary>
public static class FashionMnist
{
    /// <summary>Where Debian's dataset-fashion-mnist package puts the files.</summary>
    public const string DefaultFolder = "/usr/share/datasets/fashion-mnist";

    /// <summary>The ten class names in label order, as in the Fashion-MNIST README.</summary>
    public static readonly IReadOnlyList<string> ClassNames =
    [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ];

    /// <summary>True when <paramref name="folder"/> holds the four files (compressed or not).</summary>
    public static bool IsAvailable(string folder = DefaultFolder) =>
        new[] { true, false }.All(train => FindFile(folder, Prefix(train) + "-images-idx3-ubyte") != null
                                           && FindFile(folder, Prefix(train) + "-labels-idx1-ubyte") != null);

    /// <summary>The training split (train-*) or the test split (t10k-*) as an <see cref="ImageDataset"/> (N, 1, 28, 28).</summary>
    public static ImageDataset Load(string folder = DefaultFolder, bool train = true)
    {
        if (!Directory.Exists(folder))
            throw new LdmException($"Fashion-MNIST folder '{folder}' does not exist; run scripts/install-fashion-mnist.sh (Debian package dataset-fashion-mnist) or pass the folder holding the IDX files.");
        string prefix = Prefix(train);
        string images = FindFile(folder, prefix + "-images-idx3-ubyte")
            ?? throw new LdmException($"'{folder}' has no {prefix}-images-idx3-ubyte(.gz); run scripts/install-fashion-mnist.sh or pass the folder holding the Fashion-MNIST IDX files.");
        string labels = FindFile(folder, prefix + "-labels-idx1-ubyte")
            ?? throw new LdmException($"'{folder}' has no {prefix}-labels-idx1-ubyte(.gz); run scripts/install-fashion-mnist.sh or pass the folder holding the Fashion-MNIST IDX files.");
        return LoadIdxPair(images, labels, ClassNames);
    }

    /// <summary>Any MNIST-family pair of IDX files (images, labels) as a labelled <see cref="ImageDataset"/>.</summary>
    public static ImageDataset LoadIdxPair(string imagesPath, string labelsPath, IReadOnlyList<string> classNames)
    {
        var x = IdxReader.ReadImages(imagesPath);
        var y = IdxReader.ReadLabels(labelsPath);
        bool owned = false;
        try
        {
            if (x.shape[0] != y.shape[0])
                throw new LdmException($"'{imagesPath}' holds {x.shape[0]} images but '{labelsPath}' holds {y.shape[0]} labels; use the matching pair of files.");
            if (x.shape[2] != x.shape[3])
                throw new LdmException($"'{imagesPath}' holds {x.shape[2]}x{x.shape[3]} images; only square images are supported.");
            if (y.shape[0] > 0 && y.max().item<long>() >= classNames.Count)
                throw new LdmException($"'{labelsPath}' has label {y.max().item<long>()} but only {classNames.Count} classes are known; check that it is the right file.");
            var ds = new ImageDataset(x, y, new string?[x.shape[0]], classNames, imagesPath);
            owned = true;
            return ds;
        }
        finally
        {
            if (!owned) { x.Dispose(); y.Dispose(); }
        }
    }

    static string Prefix(bool train) => train ? "train" : "t10k";

    static string? FindFile(string folder, string stem)
    {
        foreach (var name in new[] { stem + ".gz", stem, stem.Replace("-idx", ".idx") + ".gz", stem.Replace("-idx", ".idx") })
        {
            string p = Path.Combine(folder, name);
            if (File.Exists(p)) return p;
        }
        return null;
    }
}
