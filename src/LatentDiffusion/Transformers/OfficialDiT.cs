using static TorchSharp.torch;

namespace LatentDiffusion.Transformers;

/// <summary>
/// Reads the model config off an official facebookresearch/DiT state dict (DiT-XL-2-256x256.pt and friends are plain
/// state dicts with no config): sizes come from tensor shapes, the head count from DiT's presets (it is not visible
/// in the weights) unless given.
/// </summary>
internal static class OfficialDiT
{
    public static bool Looks(IReadOnlyDictionary<string, Tensor> sd) =>
        sd.ContainsKey("x_embedder.proj.weight") && sd.ContainsKey("blocks.0.adaLN_modulation.1.weight");

    public static TransformerConfig InferConfig(IReadOnlyDictionary<string, Tensor> sd, string source, int? numHeads = null)
    {
        if (!Looks(sd))
            throw new LdmException($"'{source}' is not an official DiT state dict (no x_embedder.proj.weight / blocks.0.adaLN_modulation.1.weight); pass a DiT checkpoint, or import the file as the model it is.");
        Tensor Get(string k) => sd.TryGetValue(k, out var t) ? t
            : throw new LdmException($"'{source}' lacks '{k}', which every DiT checkpoint has; the file is incomplete, re-download it.");
        var proj = Get("x_embedder.proj.weight");          // (D, C, p, p)
        int hidden = (int)proj.shape[0], inChannels = (int)proj.shape[1], patch = (int)proj.shape[2];
        long tokens = Get("pos_embed").shape[1];
        int grid = (int)Math.Round(Math.Sqrt(tokens));
        if (grid * grid != tokens) throw new LdmException($"'{source}': pos_embed has {tokens} tokens, not a square grid; the file is not a DiT checkpoint.");
        int depth = 0;
        while (sd.ContainsKey($"blocks.{depth}.attn.qkv.weight")) depth++;
        long outDim = Get("final_layer.linear.weight").shape[0];   // p*p*out_channels
        int outChannels = (int)(outDim / (patch * patch));
        long tableRows = Get("y_embedder.embedding_table.weight").shape[0];
        int mlpHidden = (int)Get("blocks.0.mlp.fc1.weight").shape[0];
        int heads = numHeads ?? HeadsFor(hidden, depth)
            ?? throw new LdmOptionException("DiTImport", "NumHeads", null, "be given", $"'{source}' has hidden size {hidden} with depth {depth}, not a DiT preset, so the weights do not show the head count");
        // DiT always trains with class dropout 0.1, so its table has a null row: classes = rows - 1.
        return TransformerConfig.FromOfficialDiT(grid * patch, patch, inChannels, hidden, depth, heads,
            (double)mlpHidden / hidden, classDropoutProb: 0.1, numClasses: (int)tableRows - 1,
            learnSigma: outChannels == 2 * inChannels);
    }

    static int? HeadsFor(int hidden, int depth)
    {
        foreach (var name in TransformerPresets.Names)
        {
            var (d, h, heads, _) = TransformerPresets.Get(name);
            if (d == depth && h == hidden) return heads;
        }
        return null;
    }
}
