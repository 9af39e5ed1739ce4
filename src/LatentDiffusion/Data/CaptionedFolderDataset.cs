using System.Text.Json;
using System.Text.Json.Nodes;
using LatentDiffusion.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Data;

/// <summary>
/// A folder of images described by a <c>metadata.jsonl</c> beside them, the Hugging Face imagefolder convention:
/// one JSON object per line, <c>{"file_name": "a.png", "text": "a red circle", "label": 3}</c>. <c>file_name</c> is
/// relative to the folder; <c>text</c> is the caption (may be absent or null); <c>label</c> is optional and either an
/// integer class id (class names are then the ids as text) or a class name (ids are given to the distinct names in
/// ordinal sorted order). Every line must then have a label, or none may. Blank lines are ignored.
/// </summary>
public static class CaptionedFolderDataset
{
    /// <summary>The metadata file looked for in the folder.</summary>
    public const string MetadataFileName = "metadata.jsonl";

    /// <summary>One parsed metadata line.</summary>
    /// <param name="FileName">The image, relative to the folder.</param>
    /// <param name="Text">The caption, or null.</param>
    /// <param name="Label">The label as written (integer id or class name), or null.</param>
    /// <param name="Line">The 1-based line number, for messages.</param>
    public sealed record Entry(string FileName, string? Text, JsonNode? Label, int Line);

    /// <summary>How a metadata line is parsed: a key given twice is an error, not a value silently picked.</summary>
    static readonly JsonDocumentOptions StrictJson = new() { AllowDuplicateProperties = false };

    /// <summary>Reads and checks <c>metadata.jsonl</c> of <paramref name="folder"/>.</summary>
    public static List<Entry> ReadMetadata(string folder)
    {
        ImageFolderDataset.CheckFolder(folder);
        string path = Path.Combine(folder, MetadataFileName);
        if (!File.Exists(path))
            throw new LdmException($"'{folder}' has no {MetadataFileName}; write one line {{\"file_name\": ..., \"text\": ...}} per image, or use a folder with one subfolder per class.");
        var entries = new List<Entry>();
        int lineNo = 0;
        foreach (string line in File.ReadLines(path))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            JsonObject obj;
            try
            {
                // A key given twice is refused here (JSON nodes read keys only when first used, and would then throw an
                // ArgumentException from the lookups below).
                obj = JsonNode.Parse(line, documentOptions: StrictJson) as JsonObject
                    ?? throw new LdmException($"{path}:{lineNo} is not a JSON object; write one {{\"file_name\", \"text\"}} object per line.");
            }
            catch (JsonException e)
            {
                throw new LdmException($"{path}:{lineNo} is not valid JSON ({e.Message.Split('\n')[0]}); fix the line.", e);
            }
            if (obj["file_name"] is not JsonValue fv || !fv.TryGetValue(out string? fileName) || string.IsNullOrEmpty(fileName))
                throw new LdmException($"{path}:{lineNo} lacks a \"file_name\" string; every line must name its image file.");
            // A character no path can hold (NUL on Linux) would make Path.GetFullPath throw an ArgumentException later.
            if (fileName.IndexOfAny(Path.GetInvalidPathChars()) >= 0)
                throw new LdmException($"{path}:{lineNo} has a \"file_name\" with a character no file path can hold; write the image's file name.");
            string? text = null;
            if (obj["text"] is JsonNode tn)
            {
                if (tn is not JsonValue tv || !tv.TryGetValue(out text))
                    throw new LdmException($"{path}:{lineNo} has a \"text\" that is not a string; write the caption as a JSON string.");
            }
            entries.Add(new Entry(fileName, text, obj["label"], lineNo));
        }
        if (entries.Count == 0)
            throw new LdmException($"'{path}' lists no images; add one line per image.");
        return entries;
    }

    /// <summary>
    /// Loads the listed images (center crop, resize to size × size, 1 or 3 channels) with their captions and labels.
    /// A missing or unreadable image is an error naming it, unless <paramref name="skipUnreadable"/>: then it is
    /// skipped and counted in <see cref="ImageDataset.SkippedCount"/>.
    /// </summary>
    public static ImageDataset Load(string folder, int size, int channels, ResizeFilter filter = ResizeFilter.Bicubic,
        bool skipUnreadable = false, int minSize = 0)
    {
        var entries = ReadMetadata(folder);
        string metaPath = Path.Combine(folder, MetadataFileName);
        var (labels, classNames) = ResolveLabels(entries, metaPath);

        var files = entries.Select(e => Path.GetFullPath(Path.Combine(folder, e.FileName))).ToList();
        var (images, kept) = ImageFileLoader.Load(files, size, channels, filter, minSize, skipUnreadable);
        int skipped = kept.Count(k => !k);
        if (images.shape[0] == 0)
        {
            images.Dispose();
            throw new LdmException($"none of the {files.Count} images listed in '{metaPath}' could be read ({skipped} skipped as unreadable); check the files.");
        }
        var keptLabels = labels.Where((_, i) => kept[i]).ToArray();
        var keptCaptions = entries.Where((_, i) => kept[i]).Select(e => e.Text).ToArray();
        return new ImageDataset(images, torch.tensor(keptLabels, ScalarType.Int64, device: torch.CPU), keptCaptions, classNames, folder, skipped);
    }

    /// <summary>The largest integer label taken as a class id (a million classes; ImageNet-21k has 21 841).</summary>
    public const long MaxClassId = 999_999;

    static (long[] labels, IReadOnlyList<string> classNames) ResolveLabels(List<Entry> entries, string metaPath)
    {
        int withLabel = entries.Count(e => e.Label != null);
        if (withLabel == 0) return (Enumerable.Repeat(-1L, entries.Count).ToArray(), Array.Empty<string>());
        if (withLabel != entries.Count)
        {
            var missing = entries.First(e => e.Label == null);
            throw new LdmException($"{metaPath}:{missing.Line} has no \"label\" while other lines have one; give every line a label or none.");
        }
        bool allInts = entries.All(e => e.Label is JsonValue v && v.GetValueKind() == JsonValueKind.Number);
        bool allStrings = entries.All(e => e.Label is JsonValue v && v.GetValueKind() == JsonValueKind.String);
        if (allInts)
        {
            var ids = new long[entries.Count];
            for (int i = 0; i < entries.Count; i++)
            {
                var v = (JsonValue)entries[i].Label!;
                if (!v.TryGetValue(out long id) || id < 0)
                    throw new LdmException($"{metaPath}:{entries[i].Line} has label {v.ToJsonString()}; integer labels must be class ids 0, 1, 2, ...");
                // Class ids name the rows of the model's label table (and the classes get one name each), so an id of
                // billions is a typo, not a data set.
                if (id > MaxClassId)
                    throw new LdmException($"{metaPath}:{entries[i].Line} has label {id}, larger than any class id can be (at most {MaxClassId}); integer labels must be class ids 0, 1, 2, ...");
                ids[i] = id;
            }
            long max = ids.Max();
            return (ids, Enumerable.Range(0, (int)max + 1).Select(k => k.ToString()).ToArray());
        }
        if (allStrings)
        {
            var names = entries.Select(e => ((JsonValue)e.Label!).GetValue<string>()).ToArray();
            var classes = names.Distinct().OrderBy(n => n, StringComparer.Ordinal).ToArray();
            var index = classes.Select((n, k) => (n, k)).ToDictionary(p => p.n, p => (long)p.k, StringComparer.Ordinal);
            return (names.Select(n => index[n]).ToArray(), classes);
        }
        var odd = entries.FirstOrDefault(e => !(e.Label is JsonValue v && v.GetValueKind() is JsonValueKind.Number or JsonValueKind.String));
        throw new LdmException(odd == null
            ? $"'{metaPath}' mixes integer and string labels; use class ids everywhere or class names everywhere."
            : $"{metaPath}:{odd.Line} has a label that is neither an integer nor a string; write a class id or a class name.");
    }
}
