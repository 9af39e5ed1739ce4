namespace LatentDiffusion.Transformers;

/// <summary>DiT's model sizes: S, B, L, XL with patch sizes 2, 4, 8 (depth, width, heads as in the DiT paper, Table 1).</summary>
public static class TransformerPresets
{
    static readonly (string size, int depth, int hidden, int heads)[] Sizes =
    [
        ("S", 12, 384, 6),
        ("B", 12, 768, 12),
        ("L", 24, 1024, 16),
        ("XL", 28, 1152, 16),
    ];

    static readonly int[] PatchSizes = [2, 4, 8];

    /// <summary>All valid names: S/2, S/4, S/8, B/2, ..., XL/8.</summary>
    public static IReadOnlyList<string> Names { get; } =
        Sizes.SelectMany(s => PatchSizes.Select(p => $"{s.size}/{p}")).ToList();

    /// <summary>(depth, hidden size, heads, patch size) of a preset; unknown names throw <see cref="LdmException"/>.</summary>
    public static (int depth, int hidden, int heads, int patch) Get(string name)
    {
        string key = (name ?? "").Trim();
        if (key.StartsWith("DiT-", StringComparison.OrdinalIgnoreCase)) key = key[4..];
        key = key.Replace('-', '/');
        var parts = key.Split('/');
        if (parts.Length == 2 && int.TryParse(parts[1], out int patch) && PatchSizes.Contains(patch))
            foreach (var s in Sizes)
                if (string.Equals(s.size, parts[0], StringComparison.OrdinalIgnoreCase))
                    return (s.depth, s.hidden, s.heads, patch);
        throw new LdmException($"unknown transformer preset '{name}'; use one of {string.Join(", ", Names)}.");
    }
}
