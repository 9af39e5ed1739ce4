using System.IO.Compression;
using LatentDiffusion.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests;

/// <summary>
/// Seeded mutations of a torch.save state dict (.pt: a zip of a pickle and tensor storages): the pickle's bytes changed,
/// cut or extended inside an intact zip (so the unpickler meets them), a storage truncated or dropped, the zip's own
/// bytes changed. Loading every mutant either succeeds or throws an <see cref="LdmException"/>, never another exception.
/// </summary>
public sealed class PyTorchCheckpointFuzzTests : IDisposable
{
    readonly string _dir = RepoPaths.NewTempDir("pt-fuzz");

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    /// <summary>The zip's entries (name → bytes), in order.</summary>
    static List<(string name, byte[] bytes)> Entries(byte[] zip)
    {
        using var archive = new ZipArchive(new MemoryStream(zip), ZipArchiveMode.Read);
        return archive.Entries.Select(e =>
        {
            using var s = e.Open();
            var m = new MemoryStream();
            s.CopyTo(m);
            return (e.FullName, m.ToArray());
        }).ToList();
    }

    static byte[] Zip(IEnumerable<(string name, byte[] bytes)> entries)
    {
        var m = new MemoryStream();
        using (var archive = new ZipArchive(m, ZipArchiveMode.Create, leaveOpen: true))
            foreach (var (name, bytes) in entries)
            {
                using var s = archive.CreateEntry(name, CompressionLevel.NoCompression).Open();
                s.Write(bytes);
            }
        return m.ToArray();
    }

    // Pickle opcodes and values the unpickler knows, to put in place of a byte now and then.
    const string Opcodes = "}q(X]h)K\u0085\u0086\u0087\u0088\u0089\u008a\u0095cRtbeus.NJMGq\u0094\u008c";

    static byte[] MutatePickle(byte[] pickle, Random rng)
    {
        var b = (byte[])pickle.Clone();
        switch (rng.Next(6))
        {
            case 0: return b[..rng.Next(b.Length)];
            case 1:
                int at = rng.Next(b.Length);
                var junk = new byte[1 + rng.Next(8)];
                for (int i = 0; i < junk.Length; i++) junk[i] = rng.Next(2) == 0 ? (byte)Opcodes[rng.Next(Opcodes.Length)] : (byte)rng.Next(256);
                return [.. b[..at], .. junk, .. b[at..]];
            default:
                for (int i = 0, n = 1 + rng.Next(4); i < n; i++)
                    b[rng.Next(b.Length)] = rng.Next(2) == 0 ? (byte)Opcodes[rng.Next(Opcodes.Length)] : (byte)rng.Next(256);
                return b;
        }
    }

    [Fact]
    public void MutatedTorchSaveFilesLoadOrGiveAnLdmException()
    {
        string original = Path.Combine(_dir, "original.pt");
        using (var scope = torch.NewDisposeScope())
        {
            var g = new Generator(3);
            PyTorchCheckpoint.Save(original, new Dictionary<string, Tensor>
            {
                ["blocks.0.weight"] = torch.randn([4, 3], generator: g),
                ["blocks.0.bias"] = torch.randn([4], generator: g),
                ["embed.weight"] = torch.randn([2, 4], generator: g).to(ScalarType.BFloat16),
                ["steps"] = torch.tensor(7L),
            });
        }
        var bytes = File.ReadAllBytes(original);
        var entries = Entries(bytes);
        int pickle = entries.FindIndex(e => e.name.EndsWith("data.pkl", StringComparison.Ordinal));
        Assert.True(pickle >= 0);
        var failures = new List<string>();
        int loaded = 0;
        const int Cases = 600;
        for (int seed = 0; seed < Cases && failures.Count < 5; seed++)
        {
            var rng = new Random(seed);
            byte[] mutant;
            switch (rng.Next(10))
            {
                case < 6:
                    mutant = Zip(entries.Select((e, i) => i == pickle ? (e.name, MutatePickle(e.bytes, rng)) : e));
                    break;
                case 6 or 7:
                    // A storage cut short, emptied or dropped.
                    int storage = entries.FindIndex(e => e.name.Contains("/data/", StringComparison.Ordinal));
                    int target = storage < 0 ? pickle : storage + rng.Next(entries.Count(e => e.name.Contains("/data/", StringComparison.Ordinal)));
                    mutant = Zip(rng.Next(3) == 0
                        ? entries.Where((_, i) => i != target)
                        : entries.Select((e, i) => i == target ? (e.name, e.bytes[..rng.Next(e.bytes.Length + 1)]) : e));
                    break;
                default:
                    mutant = (byte[])bytes.Clone();
                    for (int i = 0, n = 1 + rng.Next(4); i < n; i++) mutant[rng.Next(mutant.Length)] = (byte)rng.Next(256);
                    break;
            }
            string path = Path.Combine(_dir, $"m{seed}.pt");
            File.WriteAllBytes(path, mutant);
            try
            {
                foreach (var t in PyTorchCheckpoint.Load(path).Values) t.Dispose();
                loaded++;
            }
            catch (LdmException) { }
            catch (Exception e) { failures.Add($"seed {seed}: {e.GetType().Name}: {e.Message.Split('\n')[0]}"); }
            finally { File.Delete(path); }
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
        Assert.InRange(loaded, 1, Cases * 9 / 10);
    }
}
