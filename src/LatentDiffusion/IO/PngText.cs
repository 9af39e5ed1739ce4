using System.Buffers.Binary;
using System.Text;

namespace LatentDiffusion.IO;

/// <summary>
/// Text chunks of a PNG file (key → value), as image viewers and the Stable Diffusion web UIs show them: a generated
/// image carries the settings that made it. Latin-1 text is written as <c>tEXt</c> (what most tools read), any other
/// text as uncompressed UTF-8 <c>iTXt</c>; both are read back.
/// </summary>
public static class PngText
{
    static readonly byte[] Signature = [137, 80, 78, 71, 13, 10, 26, 10];
    static readonly Encoding Latin1 = Encoding.Latin1;

    /// <summary>The PNG <paramref name="png"/> with one text chunk per entry inserted after its header chunk (IHDR).</summary>
    public static byte[] Add(byte[] png, IEnumerable<KeyValuePair<string, string>> entries)
    {
        RequirePng(png);
        // IHDR is always first: signature (8) + length (4) + type (4) + 13 data bytes + CRC (4).
        int afterHeader = 8 + 12 + BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(8));
        using var output = new MemoryStream(png.Length + 256);
        output.Write(png, 0, afterHeader);
        foreach (var (key, value) in entries) WriteChunk(output, ChunkOf(key, value));
        output.Write(png, afterHeader, png.Length - afterHeader);
        return output.ToArray();
    }

    /// <summary>Every tEXt and uncompressed iTXt entry of <paramref name="png"/>, in file order.</summary>
    public static IReadOnlyList<KeyValuePair<string, string>> Read(byte[] png)
    {
        RequirePng(png);
        var entries = new List<KeyValuePair<string, string>>();
        for (int at = 8; at + 12 <= png.Length;)
        {
            int length = BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(at));
            if (length < 0 || at + 12 + length > png.Length) throw new LdmException("the PNG is truncated or corrupt (a chunk runs past the end of the file).");
            string type = Encoding.ASCII.GetString(png, at + 4, 4);
            var data = png.AsSpan(at + 8, length);
            int zero = data.IndexOf((byte)0);
            if (type == "tEXt" && zero > 0)
                entries.Add(new(Latin1.GetString(data[..zero]), Latin1.GetString(data[(zero + 1)..])));
            else if (type == "iTXt" && zero > 0 && data.Length > zero + 2 && data[zero + 1] == 0)
            {
                // keyword \0 compression-flag compression-method language \0 translated-keyword \0 text
                var rest = data[(zero + 3)..];
                int language = rest.IndexOf((byte)0);
                int translated = language < 0 ? -1 : rest[(language + 1)..].IndexOf((byte)0);
                if (translated >= 0)
                    entries.Add(new(Latin1.GetString(data[..zero]), Encoding.UTF8.GetString(rest[(language + 1 + translated + 1)..])));
            }
            if (type == "IEND") break;
            at += 12 + length;
        }
        return entries;
    }

    static (string type, byte[] data) ChunkOf(string key, string value)
    {
        if (key.Length is < 1 or > 79 || key.Any(c => c is < ' ' or > '~'))
            throw new LdmException($"PNG text key '{key}' must be 1 to 79 printable ASCII characters.");
        bool latin1 = value.All(c => c <= 'ÿ' && c != '\0');
        var data = new MemoryStream();
        data.Write(Latin1.GetBytes(key));
        data.WriteByte(0);
        if (latin1)
        {
            data.Write(Latin1.GetBytes(value));
            return ("tEXt", data.ToArray());
        }
        // Uncompressed, no language tag, no translated keyword.
        data.Write([0, 0, 0, 0]);
        data.Write(Encoding.UTF8.GetBytes(value));
        return ("iTXt", data.ToArray());
    }

    static void WriteChunk(Stream output, (string type, byte[] data) chunk)
    {
        Span<byte> word = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(word, chunk.data.Length);
        output.Write(word);
        byte[] typeAndData = [.. Encoding.ASCII.GetBytes(chunk.type), .. chunk.data];
        output.Write(typeAndData);
        BinaryPrimitives.WriteUInt32BigEndian(word, Crc32(typeAndData));
        output.Write(word);
    }

    static void RequirePng(byte[] png)
    {
        if (png.Length < 33 || !png.AsSpan(0, 8).SequenceEqual(Signature) || Encoding.ASCII.GetString(png, 12, 4) != "IHDR")
            throw new LdmException("the bytes are not a PNG image (no PNG signature and header chunk).");
    }

    static readonly uint[] CrcTable = Enumerable.Range(0, 256).Select(n =>
    {
        uint c = (uint)n;
        for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        return c;
    }).ToArray();

    /// <summary>The CRC-32 of the PNG specification (ISO 3309), over a chunk's type and data.</summary>
    static uint Crc32(ReadOnlySpan<byte> bytes)
    {
        uint c = 0xFFFFFFFFu;
        foreach (byte b in bytes) c = CrcTable[(c ^ b) & 0xFF] ^ (c >> 8);
        return c ^ 0xFFFFFFFFu;
    }
}
