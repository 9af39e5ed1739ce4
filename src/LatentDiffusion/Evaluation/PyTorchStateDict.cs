using System.Collections;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Evaluation;

/// <summary>Reads a PyTorch <c>torch.save</c>d state dict (zip format) into name → tensor, through TorchSharp.PyBridge.</summary>
internal static class PyTorchStateDict
{
    public static Dictionary<string, Tensor> Read(string path)
    {
        Hashtable table;
        try
        {
            using var stream = File.OpenRead(path);
            table = TorchSharp.PyBridge.PyTorchUnpickler.UnpickleStateDict(stream);
        }
        catch (Exception e) when (e is not LdmException and not OutOfMemoryException)
        {
            throw new LdmException($"cannot read the PyTorch state dict '{path}' ({e.GetType().Name}: {e.Message}); re-download it or convert it to safetensors.");
        }
        var dict = new Dictionary<string, Tensor>();
        foreach (DictionaryEntry e in table)
            if (e.Key is string k && e.Value is Tensor t) dict[k] = t;
        return dict;
    }
}
