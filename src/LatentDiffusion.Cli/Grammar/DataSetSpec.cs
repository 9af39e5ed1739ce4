using System.Globalization;
using LatentDiffusion.Data;
using LatentDiffusion.IO;

namespace LatentDiffusion.Cli.Grammar;

/// <summary>What a data-set spec names; <see cref="DataSetSpec.Parse"/> decides it from the text and the file system.</summary>
public enum DataSetKind
{
    /// <summary><c>shapes</c>: the built-in class form (12 classes).</summary>
    Shapes,
    /// <summary><c>shapes-text</c>: the built-in captioned form.</summary>
    ShapesText,
    /// <summary><c>fashion-mnist[:train|test]</c>.</summary>
    FashionMnist,
    /// <summary>A folder of images, one subfolder per class (or, where labels are not needed, images directly in it).</summary>
    ImageFolder,
    /// <summary>A folder with a <c>metadata.jsonl</c> of captions.</summary>
    CaptionedFolder,
    /// <summary>A folder made by <c>ldm encode</c> (its <c>index.json</c>).</summary>
    LatentCache,
    /// <summary>An .npz of samples (<c>arr_0</c> uint8 NHWC, optional <c>arr_1</c> labels).</summary>
    SamplesNpz,
    /// <summary>An .npz of feature statistics (<c>mu</c>, <c>sigma</c>), as pytorch-fid writes.</summary>
    StatisticsNpz,
}

/// <summary>
/// One data set named on the command line, the same grammar for every flag that reads data (<c>--data</c>,
/// <c>--samples</c>, <c>--reference</c>): a built-in set <c>NAME[:PARAM,PARAM...]</c> or a path.
/// <list type="bullet">
/// <item><c>shapes</c>, <c>shapes-text</c> with <c>count=N</c> and <c>seed=S</c> (defaults: the command's), and for
/// <c>shapes-text</c> <c>two=P</c>, the percent of images with two shapes (default 50);</item>
/// <item><c>fashion-mnist</c> with the split <c>train</c> (default) or <c>test</c> and <c>dir=FOLDER</c> (default Debian's);</item>
/// <item>a folder (class subfolders, or a <c>metadata.jsonl</c>), a latent cache folder, or an .npz of samples or statistics.</item>
/// </list>
/// A path that looks like a built-in name is written with a directory part (<c>./shapes</c>).
/// </summary>
public sealed record DataSetSpec(DataSetKind Kind, string Text, string? Path = null, bool Train = true, int? Count = null, int? Seed = null,
    int? TwoShapePercent = null)
{
    /// <summary>The grammar in one line, for help texts and errors.</summary>
    public const string Syntax = "shapes[:count=N,seed=S], shapes-text[:count=N,seed=S,two=P], fashion-mnist[:train|test][,dir=FOLDER], a folder (one subfolder per class, or a metadata.jsonl), a latent cache (ldm encode) or an .npz";

    /// <summary>The built-in sets by name.</summary>
    static readonly Dictionary<string, DataSetKind> BuiltIn = new(StringComparer.OrdinalIgnoreCase)
    {
        ["shapes"] = DataSetKind.Shapes, ["shapes-text"] = DataSetKind.ShapesText, ["fashion-mnist"] = DataSetKind.FashionMnist,
    };

    /// <summary>Where Fashion-MNIST is read from.</summary>
    public string FashionMnistFolder => Path ?? FashionMnist.DefaultFolder;

    public bool IsShapes => Kind is DataSetKind.Shapes or DataSetKind.ShapesText;

    /// <summary>Images in memory (built-in sets and image folders), as opposed to a cache or an .npz.</summary>
    public bool IsImages => Kind is DataSetKind.Shapes or DataSetKind.ShapesText or DataSetKind.FashionMnist or DataSetKind.ImageFolder or DataSetKind.CaptionedFolder;

    /// <summary>Parses <paramref name="text"/> given to <paramref name="flag"/>; a user error names the flag and the grammar.</summary>
    public static DataSetSpec Parse(string? text, string flag)
    {
        string spec = (text ?? "").Trim();
        if (spec.Length == 0) throw Error(flag, spec, "is empty");
        int colon = spec.IndexOf(':');
        string name = colon < 0 ? spec : spec[..colon];
        if (BuiltIn.TryGetValue(name, out var kind))
            return ParseBuiltIn(kind, spec, colon < 0 ? [] : spec[(colon + 1)..].Split(',', StringSplitOptions.TrimEntries), flag);
        if (Directory.Exists(spec))
        {
            var folderKind = LatentCache.IsCache(spec) ? DataSetKind.LatentCache
                : FolderDataset.IsCaptioned(spec) ? DataSetKind.CaptionedFolder : DataSetKind.ImageFolder;
            return new DataSetSpec(folderKind, spec, spec);
        }
        if (File.Exists(spec) && spec.EndsWith(".npz", StringComparison.OrdinalIgnoreCase))
            return new DataSetSpec(Npz.Names(spec).Contains("mu") ? DataSetKind.StatisticsNpz : DataSetKind.SamplesNpz, spec, spec);
        if (File.Exists(spec)) throw Error(flag, spec, "is a file but not an .npz");
        throw Error(flag, spec, "is neither a built-in data set nor an existing folder or .npz");
    }

    static DataSetSpec ParseBuiltIn(DataSetKind kind, string spec, string[] parameters, string flag)
    {
        var result = new DataSetSpec(kind, spec);
        foreach (var p in parameters)
        {
            int eq = p.IndexOf('=');
            string key = eq < 0 ? p.ToLowerInvariant() : p[..eq].Trim().ToLowerInvariant();
            string value = eq < 0 ? "" : p[(eq + 1)..].Trim();
            result = (kind, key, eq < 0) switch
            {
                (DataSetKind.Shapes or DataSetKind.ShapesText, "count", false) => result with { Count = Positive(value, flag, spec, "count", min: 1) },
                (DataSetKind.Shapes or DataSetKind.ShapesText, "seed", false) => result with { Seed = Positive(value, flag, spec, "seed", min: 0) },
                (DataSetKind.ShapesText, "two", false) => result with { TwoShapePercent = Percent(value, flag, spec, "two") },
                (DataSetKind.FashionMnist, "train" or "test", true) => result with { Train = key == "train" },
                (DataSetKind.FashionMnist, "split", false) when value is "train" or "test" => result with { Train = value == "train" },
                (DataSetKind.FashionMnist, "dir", false) when value.Length > 0 => result with { Path = value },
                // fashion-mnist:FOLDER, the spelling docs/autoencoder.md records: the training split of that folder.
                (DataSetKind.FashionMnist, _, true) when parameters.Length == 1 && Directory.Exists(p) => Deprecated(result with { Path = p }, flag, spec, $"fashion-mnist:train,dir={p}"),
                _ => throw new LdmException($"{flag} '{spec}' has an unknown parameter '{p}'; write {SyntaxOf(kind)}."),
            };
        }
        return result;
    }

    static DataSetSpec Deprecated(DataSetSpec spec, string flag, string old, string replacement)
    {
        DeprecationNote.Write($"{flag} {old}", $"{flag} {replacement}");
        return spec;
    }

    static int Positive(string value, string flag, string spec, string key, int min)
    {
        if (int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n >= min) return n;
        throw new LdmException($"{flag} '{spec}' has {key}={value}; {key} must be a whole number of at least {min}; write e.g. shapes:count=2000,seed=3.");
    }

    static int Percent(string value, string flag, string spec, string key)
    {
        if (int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n <= 100) return n;
        throw new LdmException($"{flag} '{spec}' has {key}={value}; {key} is a percent, a whole number from 0 to 100; write e.g. shapes-text:two=80.");
    }

    /// <summary>The parameters a built-in set takes.</summary>
    static string SyntaxOf(DataSetKind kind) => kind == DataSetKind.FashionMnist
        ? "fashion-mnist, fashion-mnist:test or fashion-mnist:train,dir=FOLDER"
        : kind == DataSetKind.Shapes ? "shapes:count=N,seed=S (either or both)" : "shapes-text:count=N,seed=S,two=P (any of them)";

    static LdmException Error(string flag, string spec, string problem) =>
        new($"{flag} '{spec}' {problem}; write {Syntax}.");

    /// <summary>Refuses a kind the command cannot read, naming what it reads instead.</summary>
    public DataSetSpec Require(string flag, string what, params DataSetKind[] allowed)
    {
        if (!allowed.Contains(Kind))
            throw new LdmException($"{flag} '{Text}' is {Describe(Kind)}, but this command reads {what}.");
        return this;
    }

    static string Describe(DataSetKind kind) => kind switch
    {
        DataSetKind.Shapes => "the built-in shapes set",
        DataSetKind.ShapesText => "the built-in shapes-text set",
        DataSetKind.FashionMnist => "Fashion-MNIST",
        DataSetKind.ImageFolder => "an image folder",
        DataSetKind.CaptionedFolder => "a captioned folder",
        DataSetKind.LatentCache => "a latent cache",
        DataSetKind.SamplesNpz => "an .npz of samples",
        _ => "an .npz of statistics",
    };
}
