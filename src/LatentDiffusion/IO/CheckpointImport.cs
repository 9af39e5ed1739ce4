using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.IO;

/// <summary>
/// Loads the weights of any supported checkpoint into a name → tensor dict: safetensors files (by content, whatever
/// the extension), torch.save files (.pt/.pth/.bin/.ckpt, see <see cref="PyTorchCheckpoint"/>), or a Hugging Face model
/// folder holding one of <see cref="FolderFileNames"/>.
/// </summary>
public static class CheckpointImport
{
    /// <summary>Weight files looked for inside a folder, in order (diffusers first, then transformers).</summary>
    public static readonly IReadOnlyList<string> FolderFileNames =
    [
        "diffusion_pytorch_model.safetensors", "model.safetensors", "diffusion_pytorch_model.bin", "pytorch_model.bin",
    ];

    /// <summary>
    /// Reads every tensor of the checkpoint at <paramref name="path"/>. <paramref name="key"/> selects a nested dict
    /// of a torch.save file (see <see cref="PyTorchCheckpoint.Load"/>); it must be null for safetensors.
    /// </summary>
    public static Dictionary<string, Tensor> LoadAny(string path, string? key = null)
    {
        if (Directory.Exists(path))
        {
            string? file = FolderFileNames.Select(n => System.IO.Path.Combine(path, n)).FirstOrDefault(File.Exists);
            if (file == null)
                throw new LdmException($"folder '{path}' holds none of {string.Join(", ", FolderFileNames)}; pass the weights file itself.");
            path = file;
        }
        // Telling the formats apart reads the first bytes, which a pipe would then no longer have.
        RandomAccessFile.Require(path);
        if (PyTorchCheckpoint.LooksLikeTorchSave(path)) return PyTorchCheckpoint.Load(path, key);
        if (LooksLikeSafetensors(path))
        {
            if (key != null)
                throw new LdmException($"'{path}' is a safetensors file, which has no nested dicts; omit the key '{key}'.");
            using var st = SafetensorsFile.Open(path);
            return st.ReadAll();
        }
        if (System.IO.Path.GetExtension(path).Equals(".safetensors", StringComparison.OrdinalIgnoreCase))
        {
            using var st = SafetensorsFile.Open(path);   // reports what is wrong with the header
            return st.ReadAll();
        }
        return PyTorchCheckpoint.Load(path, key);           // reports what the file is not
    }

    /// <summary>A safetensors file: an 8-byte little-endian header length, then a JSON object starting with '{'.</summary>
    static bool LooksLikeSafetensors(string path)
    {
        var head = PyTorchCheckpoint.ReadHead(path, 9);
        if (head.Length < 9 || head[8] != (byte)'{') return false;
        ulong len = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(head);
        return len >= 2 && len < (100UL << 20) && (long)len <= new FileInfo(path).Length - 8;
    }
}
