using LatentDiffusion.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Evaluation;

/// <summary>Images already in memory: uint8 (N, C, H, W) and optional labels (N).</summary>
public sealed class TensorSampleSource : ISampleSource
{
    readonly Tensor _images;
    readonly Tensor? _labels;

    /// <summary>A source over uint8 images (N, C, H, W) and optional labels (N); the tensors stay the caller's.</summary>
    public TensorSampleSource(Tensor images, Tensor? labels, string description)
    {
        using var check = new SampleBatch(images.alias(), labels?.alias()); // validates dtype and shapes
        _images = images; _labels = labels; Description = description;
    }

    /// <inheritdoc/>
    public string Description { get; }
    /// <inheritdoc/>
    public long? Count => _images.shape[0];

    /// <inheritdoc/>
    public IEnumerable<SampleBatch> Batches(int batchSize, long? limit = null)
    {
        long n = Math.Min(_images.shape[0], limit ?? long.MaxValue);
        for (long begin = 0; begin < n; begin += batchSize)
        {
            long len = Math.Min(batchSize, n - begin);
            yield return new SampleBatch(_images.narrow(0, begin, len).clone(), _labels?.narrow(0, begin, len).to(ScalarType.Int64).clone());
        }
    }
}

/// <summary>
/// Samples in the ADM evaluation-suite format: an .npz whose <c>arr_0</c> is uint8 (N, H, W, C) (or (N, H, W) gray);
/// <c>arr_1</c>, when present and one-dimensional of length N, holds the class labels.
/// </summary>
public sealed class NpzSampleSource : ISampleSource
{
    readonly string _path;
    /// <summary>A source over the .npz at <paramref name="path"/>; checks that it has <c>arr_0</c>.</summary>
    public NpzSampleSource(string path)
    {
        _path = path;
        var names = Npz.Names(path);
        if (!names.Contains("arr_0"))
            throw new LdmException($"'{path}' has no 'arr_0' array of samples (arrays: {string.Join(", ", names)}); pass an .npz of samples (arr_0 uint8 NHWC, the ADM evaluation suite's format).");
    }

    /// <inheritdoc/>
    public string Description => _path;
    /// <summary>Null: the count is known only once the file is read.</summary>
    public long? Count => null;

    /// <inheritdoc/>
    public IEnumerable<SampleBatch> Batches(int batchSize, long? limit = null)
    {
        var arrays = Npz.Read(_path);
        try
        {
            var images = arrays["arr_0"];
            if (images.dtype != ScalarType.Byte || images.dim() is not (3 or 4))
                throw new LdmException($"'{_path}' arr_0 is {images.dtype} [{string.Join(",", images.shape)}], not uint8 (N, H, W, C); export samples as 8-bit images.");
            var nchw = images.dim() == 3 ? images.unsqueeze(1) : images.permute(0, 3, 1, 2);
            if (nchw.shape[1] is not (1 or 3))
                throw new LdmException($"'{_path}' arr_0 has {nchw.shape[1]} channels; samples must be gray (1) or RGB (3).");
            Tensor? labels = arrays.TryGetValue("arr_1", out var l) && l.dim() == 1 && l.shape[0] == images.shape[0] ? l : null;
            foreach (var b in new TensorSampleSource(nchw, labels, _path).Batches(batchSize, limit)) yield return b;
        }
        finally { foreach (var t in arrays.Values) t.Dispose(); }
    }
}

/// <summary>
/// Every image file under a folder (recursive, sorted by path). When all images sit in sub-folders, each
/// sub-folder is a class and the label is its index in sorted order (as torchvision's ImageFolder).
/// All images must have the same size; they are read with the given number of channels.
/// </summary>
public sealed class ImageFolderSampleSource : ISampleSource
{
    readonly string _root;
    readonly int _channels;
    readonly List<(string path, long label)> _files;
    /// <summary>Sub-folder names in label order when every image sits in a sub-folder, else empty.</summary>
    public IReadOnlyList<string> ClassNames { get; }

    /// <summary>Lists the images under <paramref name="root"/>, to be read with <paramref name="channels"/> channels (1 or 3).</summary>
    public ImageFolderSampleSource(string root, int channels)
    {
        if (!Directory.Exists(root)) throw new LdmException($"image folder '{root}' does not exist; check the path.");
        _root = root; _channels = channels;
        var files = Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories)
            .Where(ImageFile.HasImageExtension).Order(StringComparer.Ordinal).ToList();
        if (files.Count == 0) throw new LdmException($"no image files (png, jpg, ...) under '{root}'; check the path.");
        bool allInSubfolders = files.All(f => Path.GetDirectoryName(Path.GetRelativePath(root, f)) is { Length: > 0 });
        if (allInSubfolders)
        {
            var classes = files.Select(f => Path.GetRelativePath(root, f).Split(Path.DirectorySeparatorChar)[0]).Distinct().Order(StringComparer.Ordinal).ToList();
            ClassNames = classes;
            _files = files.Select(f => (f, (long)classes.IndexOf(Path.GetRelativePath(root, f).Split(Path.DirectorySeparatorChar)[0]))).ToList();
        }
        else
        {
            ClassNames = [];
            _files = files.Select(f => (f, -1L)).ToList();
        }
    }

    /// <inheritdoc/>
    public string Description => _root;
    /// <inheritdoc/>
    public long? Count => _files.Count;
    /// <summary>Whether the images are labelled by their sub-folders.</summary>
    public bool HasLabels => ClassNames.Count > 0;

    /// <inheritdoc/>
    public IEnumerable<SampleBatch> Batches(int batchSize, long? limit = null)
    {
        int n = (int)Math.Min(_files.Count, limit ?? long.MaxValue);
        int? w = null, h = null;
        for (int begin = 0; begin < n; begin += batchSize)
        {
            int len = Math.Min(batchSize, n - begin);
            var pixels = new List<ImagePixels>(len);
            for (int i = begin; i < begin + len; i++)
            {
                var p = ImageFile.ReadPixels(_files[i].path, _channels);
                w ??= p.Width; h ??= p.Height;
                if (p.Width != w || p.Height != h)
                    throw new LdmException($"'{_files[i].path}' is {p.Width}x{p.Height} but the folder's first image is {w}x{h}; evaluate images of one size.");
                pixels.Add(p);
            }
            var data = new byte[(long)len * _channels * h!.Value * w!.Value];
            int stride = _channels * h.Value * w.Value;
            for (int i = 0; i < len; i++) pixels[i].Data.CopyTo(data, (long)i * stride);
            using var nhwc = torch.tensor(data, [len, h.Value, w.Value, _channels], ScalarType.Byte, torch.CPU);
            var images = nhwc.permute(0, 3, 1, 2).contiguous();
            Tensor? labels = HasLabels ? torch.tensor(_files.Skip(begin).Take(len).Select(f => f.label).ToArray(), device: torch.CPU) : null;
            yield return new SampleBatch(images, labels);
        }
    }
}

/// <summary>An in-memory <see cref="Data.ImageDataset"/> (Fashion-MNIST, an image folder, the shapes set) as a sample source;
/// labels are given only when the whole set is labelled.</summary>
public sealed class DatasetSampleSource(Data.ImageDataset dataset) : ISampleSource
{
    /// <inheritdoc/>
    public string Description => dataset.Source;
    /// <inheritdoc/>
    public long? Count => dataset.Count;

    /// <inheritdoc/>
    public IEnumerable<SampleBatch> Batches(int batchSize, long? limit = null)
    {
        bool labelled = dataset.HasLabels && dataset.Labels.min().item<long>() >= 0;
        return new TensorSampleSource(dataset.Images, labelled ? dataset.Labels : null, dataset.Source).Batches(batchSize, limit);
    }
}
