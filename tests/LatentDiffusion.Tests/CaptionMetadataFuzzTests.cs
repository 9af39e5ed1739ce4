using System.Text;
using System.Text.Json.Nodes;
using LatentDiffusion.Data;
using LatentDiffusion.IO;

namespace LatentDiffusion.Tests;

/// <summary>
/// Seeded mutations of a captioned folder's <c>metadata.jsonl</c> (values of other types and sizes, keys dropped or
/// given twice, file names that are missing, absolute, empty or not a path, lines added, garbled or not UTF-8): loading
/// the folder either succeeds or throws an <see cref="LdmException"/>, never another exception.
/// </summary>
public sealed class CaptionMetadataFuzzTests : IDisposable
{
    readonly string _dir = RepoPaths.NewTempDir("metadata-fuzz");

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    static readonly JsonNode?[] Values =
    [
        null, true, 0, 1, 2, -1, 2147483647, 4294967296L, long.MaxValue, 1.5, -0.0, 1e300, "", "cat", "dog", "a.png", "/etc/hostname", "../a.png",
        "a\u0000.png", "sub/../b.png", new string('x', 300) + ".png", "ü.png", new JsonArray(), new JsonArray("a.png"), new JsonObject(),
        new JsonObject { ["x"] = 1 },
    ];

    static readonly string[] Keys = ["file_name", "text", "label"];

    static string MutateLine(JsonObject line, Random rng)
    {
        for (int i = 0, n = 1 + rng.Next(2); i < n; i++)
        {
            string key = Keys[rng.Next(Keys.Length)];
            switch (rng.Next(6))
            {
                case 0: line.Remove(key); break;
                case 1: line["extra"] = Values[rng.Next(Values.Length)]?.DeepClone(); break;
                default: line[key] = Values[rng.Next(Values.Length)]?.DeepClone(); break;
            }
        }
        string text = line.ToJsonString();
        if (rng.Next(5) == 0)
        {
            // The same key twice (as text: JsonObject cannot hold it).
            string key = Keys[rng.Next(Keys.Length)];
            text = text.TrimEnd('}') + (text.Length > 2 ? "," : "") + $"\"{key}\":{Values[rng.Next(Values.Length)]?.ToJsonString() ?? "null"}}}";
        }
        return text;
    }

    const string Punctuation = "{}[]\",:0123456789-\\\n";

    static byte[] Garble(byte[] bytes, Random rng)
    {
        var b = (byte[])bytes.Clone();
        for (int i = 0, n = 1 + rng.Next(5); i < n; i++)
            b[rng.Next(b.Length)] = rng.Next(3) == 0 ? (byte)rng.Next(256) : (byte)Punctuation[rng.Next(Punctuation.Length)];
        return b;
    }

    [Fact]
    public void MutatedMetadataLoadsOrGivesAnLdmException()
    {
        string folder = Path.Combine(_dir, "set");
        Directory.CreateDirectory(Path.Combine(folder, "sub"));
        var pixels = new ImagePixels(8, 8, 3, Enumerable.Range(0, 192).Select(i => (byte)(i * 5)).ToArray());
        foreach (var name in new[] { "a.png", "b.png", Path.Combine("sub", "c.png") }) ImageFile.Write(Path.Combine(folder, name), pixels);
        JsonObject[] Original() =>
        [
            new() { ["file_name"] = "a.png", ["text"] = "a red circle", ["label"] = 0 },
            new() { ["file_name"] = "b.png", ["text"] = "a blue square", ["label"] = 1 },
            new() { ["file_name"] = "sub/c.png", ["text"] = "a green triangle", ["label"] = 1 },
        ];
        string metadata = Path.Combine(folder, CaptionedFolderDataset.MetadataFileName);
        var failures = new List<string>();
        int loaded = 0;
        const int Cases = 2000;
        for (int seed = 0; seed < Cases && failures.Count < 5; seed++)
        {
            var rng = new Random(seed);
            var lines = Original().Select(l => l.ToJsonString()).ToList();
            int target = rng.Next(lines.Count);
            switch (rng.Next(8))
            {
                case < 5: lines[target] = MutateLine(Original()[target], rng); break;
                case 5: lines.Insert(rng.Next(lines.Count + 1), rng.Next(2) == 0 ? "" : MutateLine(new JsonObject(), rng)); break;
                case 6: lines.RemoveAt(target); break;
                default: break;   // whole-file byte mutation below
            }
            var bytes = Encoding.UTF8.GetBytes(string.Join("\n", lines) + "\n");
            if (rng.Next(4) == 0) bytes = Garble(bytes, rng);
            File.WriteAllBytes(metadata, bytes);
            try
            {
                using var set = CaptionedFolderDataset.Load(folder, size: 8, channels: 3);
                Assert.Equal(set.Count, set.Captions.Length);
                loaded++;
            }
            catch (LdmException) { }
            catch (Exception e) { failures.Add($"seed {seed}: {e.GetType().Name}: {e.Message.Split('\n')[0]}"); }
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
        Assert.InRange(loaded, 1, Cases * 9 / 10);
    }
}
