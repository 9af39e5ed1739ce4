using System.Buffers.Binary;
using System.IO.Compression;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Data;

/// <summary>
/// IDX files, the format of MNIST and Fashion-MNIST: two zero bytes, a type code (0x08 = unsigned byte), the number of
/// dimensions, one big-endian int32 per dimension, then the data row-major. Gzip-compressed files (.gz, recognised by
/// their magic bytes) are read through <see cref="GZipStream"/>. Only unsigned-byte files are accepted: the MNIST family
/// uses nothing else.
/// </summary>
internal static class IdxReader
{
    const byte UnsignedByte = 0x08;

    /// <summary>Reads an unsigned-byte IDX file as a uint8 tensor of its shape.</summary>
    public static Tensor Read(string path)
    {
        byte[] raw = Decompress(path);
        if (raw.Length < 4)
            throw Bad(path, $"it has {raw.Length} bytes, fewer than the 4-byte magic number");
        if (raw[0] != 0 || raw[1] != 0)
            throw Bad(path, $"the magic number starts with 0x{raw[0]:X2}{raw[1]:X2}, not 0x0000");
        if (raw[2] != UnsignedByte)
            throw Bad(path, $"the data type code is 0x{raw[2]:X2}; only unsigned byte (0x08) IDX files are supported");
        int ndim = raw[3];
        if (ndim is < 1 or > 4)
            throw Bad(path, $"it declares {ndim} dimensions; expected 1 (labels) or 3 (images)");
        int headerLen = 4 + 4 * ndim;
        if (raw.Length < headerLen)
            throw Bad(path, $"the header of {headerLen} bytes is cut short at {raw.Length} bytes");
        var shape = new long[ndim];
        long total = 1;
        for (int d = 0; d < ndim; d++)
        {
            int size = BinaryPrimitives.ReadInt32BigEndian(raw.AsSpan(4 + 4 * d, 4));
            if (size < 0) throw Bad(path, $"dimension {d} has negative size {size}");
            shape[d] = size;
            total *= size;
        }
        long dataLen = raw.Length - headerLen;
        if (dataLen != total)
            throw Bad(path, $"the header shape ({string.Join(", ", shape)}) needs {total} data bytes but the file has {dataLen} ({(dataLen < total ? "truncated" : "trailing bytes")})");
        return torch.tensor(raw.AsSpan(headerLen).ToArray(), shape, dtype: ScalarType.Byte, device: torch.CPU);
    }

    /// <summary>An images file (N, H, W) as uint8 (N, 1, H, W).</summary>
    public static Tensor ReadImages(string path)
    {
        var t = Read(path);
        if (t.dim() != 3)
        {
            var shape = string.Join(", ", t.shape);
            t.Dispose();
            throw Bad(path, $"it holds a {shape.Count(ch => ch == ',') + 1}-D array ({shape}), not images (N, H, W)");
        }
        using (t) return t.unsqueeze(1).contiguous();
    }

    /// <summary>A labels file (N) as int64 (N).</summary>
    public static Tensor ReadLabels(string path)
    {
        using var t = Read(path);
        if (t.dim() != 1)
            throw Bad(path, $"it holds an array of shape ({string.Join(", ", t.shape)}), not labels (N)");
        return t.to(ScalarType.Int64);
    }

    static LdmException Bad(string path, string what) =>
        new($"'{path}' is not a valid IDX file: {what}; re-download it (MNIST-family files are named like train-images-idx3-ubyte.gz).");

    static byte[] Decompress(string path)
    {
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (FileNotFoundException) { throw new LdmException($"IDX file not found: '{path}'; check the path."); }
        catch (DirectoryNotFoundException) { throw new LdmException($"IDX file not found: '{path}'; check the path."); }
        catch (UnauthorizedAccessException) { throw new LdmException($"cannot read '{path}': permission denied; check the file's permissions."); }
        catch (IOException e) { throw new LdmException($"cannot read '{path}': {e.Message}; check the file.", e); }
        if (bytes.Length < 2 || bytes[0] != 0x1F || bytes[1] != 0x8B) return bytes;
        try
        {
            using var gz = new GZipStream(new MemoryStream(bytes), CompressionMode.Decompress);
            using var ms = new MemoryStream();
            gz.CopyTo(ms);
            return ms.ToArray();
        }
        catch (InvalidDataException e)
        {
            throw new LdmException($"'{path}' is a corrupted gzip file ({e.Message}); re-download it.", e);
        }
    }
}
