namespace LatentDiffusion.Tests.Fixtures;

/// <summary>Whether two fixture folders are the very same fixture: the same file names with the same bytes
/// (manifest first, so that different fixtures are told apart without reading their tensors).</summary>
public static class FixtureFolderComparison
{
    public static bool AreIdentical(string a, string b)
    {
        if (!SameBytes(Path.Combine(a, "manifest.json"), Path.Combine(b, "manifest.json"))) return false;
        var filesA = Directory.GetFiles(a).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        var filesB = Directory.GetFiles(b).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        return filesA.SequenceEqual(filesB) && filesA.All(f => SameBytes(Path.Combine(a, f!), Path.Combine(b, f!)));
    }

    static bool SameBytes(string a, string b)
    {
        var ia = new FileInfo(a);
        var ib = new FileInfo(b);
        if (!ia.Exists || !ib.Exists || ia.Length != ib.Length) return false;
        using var sa = ia.OpenRead();
        using var sb = ib.OpenRead();
        var bufA = new byte[1 << 16];
        var bufB = new byte[1 << 16];
        while (true)
        {
            int n = sa.ReadAtLeast(bufA, bufA.Length, throwOnEndOfStream: false);
            int m = sb.ReadAtLeast(bufB, bufB.Length, throwOnEndOfStream: false);
            if (n != m || !bufA.AsSpan(0, n).SequenceEqual(bufB.AsSpan(0, m))) return false;
            if (n == 0) return true;
        }
    }
}
