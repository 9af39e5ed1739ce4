using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using System.Text.RegularExpressions;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.IO;

/// <summary>
/// NumPy's <c>.npy</c> format: magic <c>\x93NUMPY</c>, version, a little-endian header length, a Python-dict header
/// (<c>{'descr': '&lt;f8', 'fortran_order': False, 'shape': (64, 64), }</c>) padded with spaces to a multiple of
/// 64 bytes and ended by a newline, then the raw data. We write version 1.0 in C order; we read versions 1–3,
/// C or Fortran order, dtypes <c>&lt;f8 &lt;f4 &lt;f2 |u1 |i1 &lt;i8 &lt;i4 |b1</c> (little-endian or byte-sized only).
/// </summary>
internal static partial class Npy
{
    static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    /// <summary>Reads one array as a CPU tensor. <paramref name="source"/> names the file in error messages.</summary>
    public static Tensor Read(Stream stream, string source)
    {
        var prefix = new byte[8];
        ReadExactly(stream, prefix, source);
        if (!prefix.AsSpan(0, 6).SequenceEqual(Magic)) throw Corrupt(source, "it does not start with the .npy magic bytes");
        int major = prefix[6];
        int headerLen;
        if (major == 1)
        {
            var b = new byte[2]; ReadExactly(stream, b, source);
            headerLen = BinaryPrimitives.ReadUInt16LittleEndian(b);
        }
        else if (major is 2 or 3)
        {
            var b = new byte[4]; ReadExactly(stream, b, source);
            headerLen = checked((int)BinaryPrimitives.ReadUInt32LittleEndian(b));
        }
        else throw Corrupt(source, $"unknown .npy version {major}.{prefix[7]}");
        if (headerLen > 1 << 24) throw Corrupt(source, $"header length {headerLen} is implausible");
        var headerBytes = new byte[headerLen];
        ReadExactly(stream, headerBytes, source);
        string header = (major == 3 ? Encoding.UTF8 : Encoding.Latin1).GetString(headerBytes);

        var descr = DescrRegex().Match(header);
        var fortran = FortranRegex().Match(header);
        var shapeMatch = ShapeRegex().Match(header);
        if (!descr.Success || !fortran.Success || !shapeMatch.Success)
            throw Corrupt(source, $"the header '{header.Trim()}' lacks descr, fortran_order or shape");
        string dtypeName = descr.Groups[1].Value;
        var dtype = ParseDType(dtypeName)
            ?? throw new LdmException($"'{source}' holds an array of dtype '{dtypeName}', which is not supported; save it as float64, float32, uint8 or int64.");
        bool fortranOrder = fortran.Groups[1].Value == "True";
        long[] shape = shapeMatch.Groups[1].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(s => long.TryParse(s.TrimEnd('L'), out long v) && v >= 0 ? v : throw Corrupt(source, $"bad shape entry '{s}'"))
            .ToArray();

        long count = shape.Aggregate(1L, (a, d) => checked(a * d));
        long nbytes = checked(count * ElementSize(dtype));
        if (nbytes > Array.MaxLength) throw new LdmException($"'{source}' holds {nbytes} bytes in one array, more than can be read at once; split the file.");
        var data = new byte[nbytes];
        ReadExactly(stream, data, source);
        // Fortran order is C order of the reversed shape, transposed back.
        long[] storedShape = fortranOrder ? shape.Reverse().ToArray() : shape;
        var t = torch.empty(storedShape, dtype, torch.CPU);
        if (nbytes > 0) t.bytes = data;
        if (fortranOrder && shape.Length > 1)
        {
            var perm = Enumerable.Range(0, shape.Length).Reverse().Select(i => (long)i).ToArray();
            using var stored = t;
            t = stored.permute(perm).contiguous();
        }
        return t;
    }

    /// <summary>Writes one tensor (moved to CPU, made contiguous) as a version 1.0, C-order array.</summary>
    public static void Write(Stream stream, Tensor tensor)
    {
        using var scope = torch.NewDisposeScope();
        var t = tensor.detach().cpu().contiguous();
        string descr = DTypeName(t.dtype);
        string shape = t.shape.Length switch
        {
            0 => "()",
            1 => $"({t.shape[0]},)",
            _ => "(" + string.Join(", ", t.shape) + ")",
        };
        string dict = $"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}";
        // Pad so that magic (6) + version (2) + length (2) + header is a multiple of 64, ending with '\n'.
        int total = 10 + dict.Length + 1;
        int padded = (total + 63) / 64 * 64;
        string header = dict + new string(' ', padded - total) + "\n";
        if (header.Length > ushort.MaxValue) throw new LdmException("the array has too many dimensions to store as .npy version 1.0; reduce its rank.");
        stream.Write(Magic);
        stream.WriteByte(1); stream.WriteByte(0);
        Span<byte> len = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(len, (ushort)header.Length);
        stream.Write(len);
        stream.Write(Encoding.Latin1.GetBytes(header));
        if (t.NumberOfElements > 0) stream.Write(t.bytes);
    }

    static void ReadExactly(Stream s, byte[] buffer, string source)
    {
        try { s.ReadExactly(buffer); }
        catch (EndOfStreamException) { throw Corrupt(source, "it ends early (truncated file)"); }
    }

    static LdmException Corrupt(string source, string what) => new($"'{source}' is not a valid .npy array: {what}; re-create the file.");

    static ScalarType? ParseDType(string d) => d switch
    {
        "<f8" or "=f8" => ScalarType.Float64,
        "<f4" or "=f4" => ScalarType.Float32,
        "<f2" or "=f2" => ScalarType.Float16,
        "|u1" or "<u1" or "=u1" => ScalarType.Byte,
        "|i1" or "<i1" or "=i1" => ScalarType.Int8,
        "<i8" or "=i8" => ScalarType.Int64,
        "<i4" or "=i4" => ScalarType.Int32,
        "|b1" => ScalarType.Bool,
        _ => null,
    };

    static string DTypeName(ScalarType t) => t switch
    {
        ScalarType.Float64 => "<f8",
        ScalarType.Float32 => "<f4",
        ScalarType.Float16 => "<f2",
        ScalarType.Byte => "|u1",
        ScalarType.Int8 => "|i1",
        ScalarType.Int64 => "<i8",
        ScalarType.Int32 => "<i4",
        ScalarType.Bool => "|b1",
        _ => throw new LdmException($"a tensor of dtype {t} cannot be stored in .npy here; convert it to float32, float64, uint8 or int64 first."),
    };

    static int ElementSize(ScalarType t) => t switch
    {
        ScalarType.Float64 or ScalarType.Int64 => 8,
        ScalarType.Float32 or ScalarType.Int32 => 4,
        ScalarType.Float16 => 2,
        _ => 1,
    };

    [GeneratedRegex(@"'descr'\s*:\s*'([^']*)'")] private static partial Regex DescrRegex();
    [GeneratedRegex(@"'fortran_order'\s*:\s*(True|False)")] private static partial Regex FortranRegex();
    [GeneratedRegex(@"'shape'\s*:\s*\(([^)]*)\)")] private static partial Regex ShapeRegex();
}

/// <summary>
/// NumPy's <c>.npz</c>: a zip of <c>&lt;name&gt;.npy</c> members (<c>np.savez</c> stores them, <c>np.savez_compressed</c>
/// deflates them; both are read). Used for pytorch-fid's statistics files (<c>mu</c>, <c>sigma</c>) and for sample
/// batches in the ADM evaluation-suite format (<c>arr_0</c>: uint8 NHWC images).
/// </summary>
public static class Npz
{
    /// <summary>Reads every array of the file, by name (without the .npy suffix), as CPU tensors.</summary>
    public static Dictionary<string, Tensor> Read(string path) => Read(path, null);

    /// <summary>Reads the named arrays only (all when <paramref name="names"/> is null); a missing name is an error.</summary>
    public static Dictionary<string, Tensor> Read(string path, IReadOnlyCollection<string>? names)
    {
        var result = new Dictionary<string, Tensor>();
        try
        {
            using var archive = OpenArchive(path);
            foreach (var entry in archive.Entries)
            {
                if (!entry.FullName.EndsWith(".npy", StringComparison.Ordinal)) continue;
                string name = entry.FullName[..^4];
                if (names != null && !names.Contains(name)) continue;
                using var s = entry.Open();
                // Deflate streams cannot seek; Npy.Read only reads forward.
                result[name] = Npy.Read(s, $"{path}:{entry.FullName}");
            }
        }
        catch (InvalidDataException e)
        {
            foreach (var t in result.Values) t.Dispose();
            throw new LdmException($"'{path}' is not a valid .npz (zip) file ({e.Message}); re-create it with numpy.savez.");
        }
        if (names != null)
            foreach (var n in names)
                if (!result.ContainsKey(n))
                {
                    foreach (var t in result.Values) t.Dispose();
                    throw new LdmException($"'{path}' has no array named '{n}'; pass an .npz that holds it.");
                }
        return result;
    }

    /// <summary>The array names of the file, without reading their data.</summary>
    public static IReadOnlyList<string> Names(string path)
    {
        try
        {
            using var archive = OpenArchive(path);
            return archive.Entries.Where(e => e.FullName.EndsWith(".npy", StringComparison.Ordinal)).Select(e => e.FullName[..^4]).ToList();
        }
        catch (InvalidDataException e)
        {
            throw new LdmException($"'{path}' is not a valid .npz (zip) file ({e.Message}); re-create it with numpy.savez.");
        }
    }

    /// <summary>Writes the arrays as <c>&lt;name&gt;.npy</c> members, atomically; stored (like np.savez) or deflated (np.savez_compressed).</summary>
    public static void Write(string path, IReadOnlyDictionary<string, Tensor> arrays, bool compress = false)
    {
        AtomicFile.Write(path, stream =>
        {
            using var archive = new ZipArchive(stream, ZipArchiveMode.Create, leaveOpen: true);
            foreach (var (name, tensor) in arrays)
            {
                var entry = archive.CreateEntry(name + ".npy", compress ? CompressionLevel.Optimal : CompressionLevel.NoCompression);
                using var s = entry.Open();
                Npy.Write(s, tensor);
            }
        });
    }

    static ZipArchive OpenArchive(string path)
    {
        try { return ZipFile.OpenRead(path); }
        catch (FileNotFoundException) { throw new LdmException($"file not found: '{path}'; check the path."); }
        catch (DirectoryNotFoundException) { throw new LdmException($"file not found: '{path}'; check the path."); }
        catch (UnauthorizedAccessException) { throw new LdmException($"cannot read '{path}': permission denied; check the file's permissions."); }
    }
}
