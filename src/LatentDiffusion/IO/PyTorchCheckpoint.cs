using System.Collections;
using System.IO.Compression;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace LatentDiffusion.IO;

/// <summary>
/// State dicts saved by PyTorch's <c>torch.save</c> (.pt, .pth, .bin, .ckpt; the zip format of PyTorch ≥ 1.6), read
/// through TorchSharp.PyBridge's unpickler. The common wrappers are unwrapped: a dict holding <c>ema</c> (DiT training
/// checkpoints, whose official loader prefers the EMA weights), <c>state_dict</c> (PyTorch Lightning, CompVis .ckpt),
/// <c>model</c> or <c>module</c>; and a <c>module.</c> prefix on every key (DataParallel) is removed.
/// </summary>
public static class PyTorchCheckpoint
{
    /// <summary>Keys that wrap the state dict, in the order they are preferred.</summary>
    public static readonly IReadOnlyList<string> WrapperKeys = ["ema", "state_dict", "model", "module"];

    /// <summary>
    /// Loads the state dict of a torch.save file. <paramref name="key"/> picks a nested dict explicitly (e.g. "model"
    /// for the non-EMA weights of a DiT training checkpoint); without it the wrappers in <see cref="WrapperKeys"/> are
    /// tried in order. Tensors outside the chosen dict (optimizer state and the like) are disposed.
    /// </summary>
    public static Dictionary<string, Tensor> Load(string path, string? key = null)
    {
        CheckZip(path);
        Hashtable root;
        try
        {
            using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
            root = PyTorchUnpickler.UnpickleStateDict(fs);
        }
        catch (LdmException) { throw; }
        catch (NotImplementedException e) when (e.Message.Contains("entire model"))
        {
            throw new LdmException($"'{path}' holds a whole pickled model object, not a state dict; re-save it with torch.save(model.state_dict(), path).", e);
        }
        catch (InvalidCastException e)
        {
            throw new LdmException($"'{path}' is a torch.save file whose top-level object is not a dict; expected a state dict (or a dict holding one under 'state_dict', 'model' or 'ema').", e);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new LdmException($"'{path}' cannot be read as a PyTorch checkpoint ({e.GetType().Name}: {e.Message}); re-save it with torch.save(model.state_dict(), path) or convert it to safetensors.", e);
        }
        return Unwrap(root, path, key);
    }

    /// <summary>Picks the state dict out of an unpickled checkpoint and disposes every other tensor in it.</summary>
    internal static Dictionary<string, Tensor> Unwrap(Hashtable root, string path, string? key)
    {
        IDictionary chosen = root;
        string where = "the top level";
        if (key != null)
        {
            if (!root.ContainsKey(key) || root[key] is not IDictionary d)
                throw new LdmException($"'{path}' has no dict '{key}' at its top level (it has: {DescribeKeys(root)}); pick one of those or omit the key.");
            chosen = d;
            where = $"'{key}'";
        }
        else
        {
            // Follow wrappers while the current dict has no tensors of its own (e.g. {"model": {"state_dict": ...}}).
            for (int depth = 0; depth < 4 && !HasTensors(chosen); depth++)
            {
                string? wrapper = WrapperKeys.FirstOrDefault(w => chosen.Contains(w) && chosen[w] is IDictionary);
                if (wrapper == null) break;
                chosen = (IDictionary)chosen[wrapper]!;
                where = $"'{wrapper}'";
            }
            // A dict with its own tensors can still carry a preferred wrapper beside them (rare, but DiT's "ema").
        }

        var result = new Dictionary<string, Tensor>();
        foreach (DictionaryEntry e in chosen)
            if (e.Value is Tensor t)
            {
                if (e.Key is not string name)
                    throw new LdmException($"'{path}': {where} has a non-string key {e.Key} for a tensor, so it is not a state dict; pass the checkpoint of a model.");
                result[name] = t;
            }
        DisposeOthers(root, result.Values.ToHashSet(ReferenceEqualityComparer.Instance));
        if (result.Count == 0)
            throw new LdmException($"'{path}' holds no tensors at {where} (top-level keys: {DescribeKeys(root)}); expected a state dict, or a dict holding one under 'state_dict', 'model' or 'ema'.");

        const string dataParallel = "module.";
        if (result.Keys.All(k => k.StartsWith(dataParallel, StringComparison.Ordinal)))
            result = result.ToDictionary(kv => kv.Key[dataParallel.Length..], kv => kv.Value);
        return result;
    }

    static bool HasTensors(IDictionary d)
    {
        foreach (DictionaryEntry e in d) if (e.Value is Tensor) return true;
        return false;
    }

    static string DescribeKeys(IDictionary d)
    {
        var keys = d.Keys.Cast<object>().Select(k => k.ToString() ?? "").Take(12).ToList();
        return keys.Count == 0 ? "none" : string.Join(", ", keys) + (d.Count > 12 ? ", ..." : "");
    }

    static void DisposeOthers(object? node, HashSet<object> keep, int depth = 0)
    {
        if (depth > 32) return;
        switch (node)
        {
            case Tensor t:
                if (!keep.Contains(t)) t.Dispose();
                break;
            case IDictionary d:
                foreach (DictionaryEntry e in d) DisposeOthers(e.Value, keep, depth + 1);
                break;
            case IEnumerable list and not string:
                foreach (var item in list) DisposeOthers(item, keep, depth + 1);
                break;
        }
    }

    /// <summary>
    /// Writes a state dict in torch.save's zip format (readable by torch.load and by <see cref="Load"/>), atomically.
    /// The keys come out as a plain dict, which load_state_dict accepts.
    /// </summary>
    public static void Save(string path, IReadOnlyDictionary<string, Tensor> stateDict)
    {
        // The scope disposes the detached CPU handles made here; the caller's tensors are untouched.
        using var scope = torch.NewDisposeScope();
        var table = new Hashtable();
        foreach (var (k, v) in stateDict) table[k] = v.detach().to(torch.CPU).contiguous();
        AtomicFile.Write(path, s => PyTorchPickler.PickleStateDict(s, table, leaveOpen: true));
    }

    /// <summary>True when the file starts with a zip local-file header, as every torch.save file since PyTorch 1.6.</summary>
    public static bool LooksLikeTorchSave(string path)
    {
        var head = ReadHead(path, 4);
        return head.Length == 4 && head[0] == 0x50 && head[1] == 0x4B && head[2] == 0x03 && head[3] == 0x04;
    }

    static void CheckZip(string path)
    {
        var head = ReadHead(path, 4);
        if (head.Length >= 2 && head[0] == 0x80 && head[1] <= 0x05)
            throw new LdmException($"'{path}' was written by the legacy torch.save format (PyTorch < 1.6 or _use_new_zipfile_serialization=False), which cannot be read here; re-save it with a current torch.save or convert it to safetensors.");
        if (!LooksLikeTorchSave(path))
            throw new LdmException($"'{path}' is not a PyTorch checkpoint: expected a torch.save zip archive (.pt/.pth/.bin/.ckpt) but the file starts with {Hex(head)}; pass a state dict saved by torch.save or a .safetensors file.");
        try
        {
            using var zip = ZipFile.OpenRead(path);
            if (!zip.Entries.Any(e => e.FullName.EndsWith("data.pkl", StringComparison.Ordinal)))
                throw new LdmException($"'{path}' is a zip archive without data.pkl, so not a torch.save file; pass a state dict saved by torch.save or a .safetensors file.");
        }
        catch (InvalidDataException e)
        {
            throw new LdmException($"'{path}' is a damaged zip archive ({e.Message}); re-download or re-save the checkpoint.", e);
        }
    }

    static string Hex(byte[] b) => b.Length == 0 ? "nothing (empty file)" : "0x" + Convert.ToHexString(b);

    internal static byte[] ReadHead(string path, int n)
    {
        try
        {
            using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
            var buf = new byte[n];
            int read = fs.ReadAtLeast(buf, n, throwOnEndOfStream: false);
            return buf[..read];
        }
        catch (FileNotFoundException) { throw new LdmException($"checkpoint not found: '{path}'; check the path."); }
        catch (DirectoryNotFoundException) { throw new LdmException($"checkpoint not found: '{path}'; check the path."); }
        catch (UnauthorizedAccessException) { throw new LdmException($"cannot read '{path}': permission denied; check the file's permissions."); }
        catch (IOException e) { throw new LdmException($"cannot read '{path}': {e.Message}; check the file.", e); }
    }
}
