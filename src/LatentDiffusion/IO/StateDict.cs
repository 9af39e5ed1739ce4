using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.IO;

/// <summary>
/// Loads a state dict (name → tensor) into a module, strictly: every parameter and buffer of the module must be
/// present with the right shape, and nothing else may be in the dict. A mismatch is one error that names the
/// first missing, unexpected and mis-shaped keys. Values are converted to each parameter's dtype and device.
/// </summary>
public static class StateDict
{
    /// <summary>Copies <paramref name="dict"/> into <paramref name="module"/>'s parameters and buffers, strictly.</summary>
    /// <param name="module">The module to fill.</param>
    /// <param name="dict">Tensors by state-dict key (any dtype and device).</param>
    /// <param name="source">What the dict came from, for the error message (a file path, a fixture name).</param>
    /// <param name="ignore">Keys of the dict that are known to be unused (e.g. an optimizer's entries) and are skipped.</param>
    public static void Load(nn.Module module, IReadOnlyDictionary<string, Tensor> dict, string source, Func<string, bool>? ignore = null)
    {
        var target = module.state_dict();
        var missing = target.Keys.Where(k => !dict.ContainsKey(k)).ToList();
        var unexpected = dict.Keys.Where(k => !target.ContainsKey(k) && !(ignore?.Invoke(k) ?? false)).ToList();
        var misShaped = target.Keys.Where(dict.ContainsKey)
            .Where(k => !target[k].shape.SequenceEqual(dict[k].shape))
            .Select(k => $"{k} is [{string.Join(",", dict[k].shape)}], model needs [{string.Join(",", target[k].shape)}]")
            .ToList();
        if (missing.Count + unexpected.Count + misShaped.Count > 0)
        {
            var parts = new List<string>();
            if (missing.Count > 0) parts.Add($"{missing.Count} missing (first: {string.Join(", ", missing.Take(3))})");
            if (unexpected.Count > 0) parts.Add($"{unexpected.Count} unexpected (first: {string.Join(", ", unexpected.Take(3))})");
            if (misShaped.Count > 0) parts.Add($"{misShaped.Count} mis-shaped (first: {string.Join("; ", misShaped.Take(3))})");
            throw new LdmException($"the weights in '{source}' do not fit the model: {string.Join("; ", parts)}; check that the checkpoint and the model config (preset, sizes, block type) belong together.");
        }
        using var _ = torch.no_grad();
        foreach (var (name, dst) in target)
        {
            var src = dict[name];
            if (src.dtype == dst.dtype && src.device == dst.device) dst.copy_(src);
            else using (var converted = src.to(dst.dtype, dst.device)) dst.copy_(converted);
        }
    }

    /// <summary>Loads every tensor of a safetensors file into the module (strict).</summary>
    public static void Load(nn.Module module, string safetensorsPath)
    {
        using var file = SafetensorsFile.Open(safetensorsPath);
        using var scope = torch.NewDisposeScope();
        var dict = file.ReadAll();
        Load(module, dict, safetensorsPath);
    }
}
