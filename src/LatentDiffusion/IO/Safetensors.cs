using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.IO;

/// <summary>One tensor's entry in a safetensors header.</summary>
/// <param name="Name">The tensor's name.</param>
/// <param name="DType">Its stored element type.</param>
/// <param name="Shape">Its shape.</param>
/// <param name="Begin">Start of its bytes, relative to the data section.</param>
/// <param name="End">End (exclusive) of its bytes, relative to the data section.</param>
public sealed record SafetensorsEntry(string Name, ScalarType DType, long[] Shape, long Begin, long End);

/// <summary>
/// The safetensors format (8-byte little-endian header length, a JSON header, then raw little-endian data),
/// read lazily: the header is parsed and checked on open, each tensor is read when asked for.
/// Every structural problem (bad length, bad JSON, offsets outside the file) is an <see cref="LdmException"/>.
/// </summary>
public sealed class SafetensorsFile : IDisposable
{
    const long MaxHeaderBytes = 100L << 20;
    readonly FileStream _stream;
    readonly long _dataStart;

    /// <summary>The file opened.</summary>
    public string Path { get; }
    /// <summary>The header's <c>__metadata__</c> string entries (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }
    /// <summary>Every tensor's name, dtype, shape and byte range, by name; no data is read.</summary>
    public IReadOnlyDictionary<string, SafetensorsEntry> Entries { get; }
    /// <summary>The tensor names.</summary>
    public IEnumerable<string> Keys => Entries.Keys;

    SafetensorsFile(string path, FileStream stream, long dataStart, Dictionary<string, string> metadata, Dictionary<string, SafetensorsEntry> entries)
    {
        Path = path; _stream = stream; _dataStart = dataStart; Metadata = metadata; Entries = entries;
    }

    /// <summary>Opens <paramref name="path"/> and parses its header; an <see cref="LdmException"/> for a missing, unreadable or malformed file.</summary>
    public static SafetensorsFile Open(string path)
    {
        FileStream fs;
        try { fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16); }
        catch (FileNotFoundException) { throw new LdmException($"file not found: '{path}'; check the path."); }
        catch (DirectoryNotFoundException) { throw new LdmException($"file not found: '{path}'; check the path."); }
        catch (UnauthorizedAccessException) { throw new LdmException($"cannot read '{path}': permission denied; check the file's permissions."); }
        catch (IOException e) { throw new LdmException($"cannot read '{path}': {e.Message}"); }
        try
        {
            if (RandomAccessFile.ErrorIfNotSeekable(path, fs) is { } pipe) throw pipe;
            return Parse(path, fs);
        }
        catch { fs.Dispose(); throw; }
    }

    static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    static LdmException Corrupt(string path, string what) =>
        new($"'{path}' is not a valid safetensors file: {what}; re-download or re-convert it.");

    static SafetensorsFile Parse(string path, FileStream fs)
    {
        long fileLength = fs.Length;
        if (fileLength < 8) throw Corrupt(path, $"the file has {fileLength} bytes, fewer than the 8-byte header length");
        Span<byte> lenBytes = stackalloc byte[8];
        fs.ReadExactly(lenBytes);
        ulong headerLen = BinaryPrimitives.ReadUInt64LittleEndian(lenBytes);
        if (headerLen > (ulong)MaxHeaderBytes || (long)headerLen > fileLength - 8)
            throw Corrupt(path, $"header length {headerLen} does not fit in a file of {fileLength} bytes (truncated or not safetensors)");
        var headerBytes = new byte[headerLen];
        fs.ReadExactly(headerBytes);
        // The format's header is UTF-8 JSON; checked whole here, since the JSON nodes decode their strings only when read.
        try { _ = StrictUtf8.GetCharCount(headerBytes); }
        catch (DecoderFallbackException) { throw Corrupt(path, "the header is not UTF-8 text"); }
        JsonObject header;
        try
        {
            header = JsonNode.Parse(headerBytes) as JsonObject ?? throw Corrupt(path, "the header is not a JSON object");
            // A JsonObject reads its properties on first use: make it read them here, where a name that is not UTF-8
            // or a name given twice is reported as a corrupt header, not thrown from the loop below.
            _ = header.Count;
        }
        catch (JsonException e) { throw Corrupt(path, $"the header is not valid JSON ({e.Message.Split('\n')[0]})"); }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException or DecoderFallbackException)
        {
            throw Corrupt(path, $"the header has an invalid or repeated tensor name ({e.Message.Split('\n')[0]})");
        }

        long dataStart = 8 + (long)headerLen;
        long dataLength = fileLength - dataStart;
        var metadata = new Dictionary<string, string>();
        var entries = new Dictionary<string, SafetensorsEntry>();
        foreach (var (name, node) in header)
        {
            if (name == "__metadata__")
            {
                try
                {
                    if (node is JsonObject meta)
                        foreach (var (k, v) in meta)
                            metadata[k] = v is JsonValue jv && jv.TryGetValue(out string? s) ? s : v?.ToJsonString() ?? "";
                }
                catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException)
                {
                    throw Corrupt(path, "its __metadata__ has an invalid or repeated entry");
                }
                continue;
            }
            if (node is not JsonObject o) throw Corrupt(path, $"entry '{name}' is not an object");
            try
            {
                string dtypeName = o["dtype"]!.GetValue<string>();
                var dtype = ParseDType(dtypeName) ?? throw Corrupt(path, $"entry '{name}' has unsupported dtype '{dtypeName}'");
                long[] shape = o["shape"]!.AsArray().Select(x => x!.GetValue<long>()).ToArray();
                var offs = o["data_offsets"]!.AsArray();
                if (offs.Count != 2) throw Corrupt(path, $"entry '{name}' has {offs.Count} data offsets instead of 2");
                long begin = offs[0]!.GetValue<long>(), end = offs[1]!.GetValue<long>();
                if (shape.Any(d => d < 0)) throw Corrupt(path, $"entry '{name}' has a negative dimension");
                if (begin < 0 || end < begin || end > dataLength)
                    throw Corrupt(path, $"entry '{name}' has data offsets [{begin}, {end}] outside the {dataLength} data bytes (truncated file?)");
                long expected = shape.Aggregate(1L, (a, b) => a * b) * ElementSize(dtype);
                if (end - begin != expected)
                    throw Corrupt(path, $"entry '{name}' holds {end - begin} bytes but its shape and dtype need {expected}");
                entries[name] = new SafetensorsEntry(name, dtype, shape, begin, end);
            }
            catch (Exception e) when (e is NullReferenceException or InvalidOperationException or FormatException)
            {
                throw Corrupt(path, $"entry '{name}' lacks a valid dtype, shape or data_offsets");
            }
        }
        return new SafetensorsFile(path, fs, dataStart, metadata, entries);
    }

    /// <summary>The file holds a tensor named <paramref name="name"/>.</summary>
    public bool Contains(string name) => Entries.ContainsKey(name);

    /// <summary>Reads one tensor onto the CPU in its stored dtype.</summary>
    public Tensor Read(string name)
    {
        if (!Entries.TryGetValue(name, out var e))
            throw new LdmException($"'{Path}' has no tensor named '{name}'.");
        var t = torch.empty(e.Shape, e.DType, torch.CPU);
        long n = e.End - e.Begin;
        if (n == 0) return t;
        var buffer = new byte[n];
        lock (_stream)
        {
            _stream.Seek(_dataStart + e.Begin, SeekOrigin.Begin);
            try { _stream.ReadExactly(buffer); }
            catch (EndOfStreamException) { t.Dispose(); throw Corrupt(Path, $"tensor '{name}' ends past the end of the file"); }
        }
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("big-endian hosts are not supported");
        t.bytes = buffer;
        return t;
    }

    /// <summary>Reads every tensor (in file order of names).</summary>
    public Dictionary<string, Tensor> ReadAll() => Entries.Keys.ToDictionary(k => k, Read);

    /// <summary>Closes the file.</summary>
    public void Dispose() => _stream.Dispose();

    internal static ScalarType? ParseDType(string s) => s switch
    {
        "F64" => ScalarType.Float64,
        "F32" => ScalarType.Float32,
        "F16" => ScalarType.Float16,
        "BF16" => ScalarType.BFloat16,
        "I64" => ScalarType.Int64,
        "I32" => ScalarType.Int32,
        "I16" => ScalarType.Int16,
        "I8" => ScalarType.Int8,
        "U8" => ScalarType.Byte,
        "BOOL" => ScalarType.Bool,
        _ => null,
    };

    internal static string DTypeName(ScalarType t) => t switch
    {
        ScalarType.Float64 => "F64",
        ScalarType.Float32 => "F32",
        ScalarType.Float16 => "F16",
        ScalarType.BFloat16 => "BF16",
        ScalarType.Int64 => "I64",
        ScalarType.Int32 => "I32",
        ScalarType.Int16 => "I16",
        ScalarType.Int8 => "I8",
        ScalarType.Byte => "U8",
        ScalarType.Bool => "BOOL",
        _ => throw new NotSupportedException($"safetensors cannot store dtype {t}"),
    };

    internal static int ElementSize(ScalarType t) => t switch
    {
        ScalarType.Float64 or ScalarType.Int64 => 8,
        ScalarType.Float32 or ScalarType.Int32 => 4,
        ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Int16 => 2,
        _ => 1,
    };
}

/// <summary>Writes tensors and string metadata as one safetensors file, atomically.</summary>
public static class SafetensorsWriter
{
    /// <summary>Writes <paramref name="tensors"/> (any device, stored in their dtype, names sorted) and
    /// <paramref name="metadata"/> to <paramref name="path"/>; the file is readable by the Python <c>safetensors</c> package.</summary>
    public static void Write(string path, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        // Alignment: the header is padded with spaces so the data starts on an 8-byte boundary, as the Python writer does.
        var names = tensors.Keys.OrderBy(k => k, StringComparer.Ordinal).ToList();
        var header = new JsonObject();
        if (metadata is { Count: > 0 })
        {
            var meta = new JsonObject();
            foreach (var (k, v) in metadata) meta[k] = v;
            header["__metadata__"] = meta;
        }
        long offset = 0;
        var contiguous = new List<Tensor>(names.Count);
        foreach (var name in names)
        {
            var t = tensors[name];
            var c = t.device_type == DeviceType.CPU ? t.contiguous() : t.cpu().contiguous();
            contiguous.Add(c);
            long n = c.NumberOfElements * SafetensorsFile.ElementSize(c.dtype);
            header[name] = new JsonObject
            {
                ["dtype"] = SafetensorsFile.DTypeName(c.dtype),
                ["shape"] = new JsonArray(c.shape.Select(d => (JsonNode)JsonValue.Create(d)!).ToArray()),
                ["data_offsets"] = new JsonArray(JsonValue.Create(offset), JsonValue.Create(offset + n)),
            };
            offset += n;
        }
        var json = Encoding.UTF8.GetBytes(header.ToJsonString());
        int pad = (8 - json.Length % 8) % 8;
        var headerBytes = new byte[json.Length + pad];
        json.CopyTo(headerBytes, 0);
        for (int i = json.Length; i < headerBytes.Length; i++) headerBytes[i] = (byte)' ';
        try
        {
            AtomicFile.Write(path, s =>
            {
                Span<byte> len = stackalloc byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)headerBytes.Length);
                s.Write(len);
                s.Write(headerBytes);
                foreach (var c in contiguous) if (c.NumberOfElements > 0) s.Write(c.bytes);
            });
        }
        finally
        {
            for (int i = 0; i < names.Count; i++)
                if (!ReferenceEquals(contiguous[i], tensors[names[i]])) contiguous[i].Dispose();
        }
    }
}
