using System.Text;
using LatentDiffusion.IO;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests;

/// <summary>
/// Seeded mutations of a real safetensors file (header bytes changed, names made invalid UTF-8 or repeated): opening
/// and reading every mutant either succeeds or throws an <see cref="LdmException"/>, never another exception.
/// </summary>
public class SafetensorsFuzzTests : IDisposable
{
    readonly string _dir = RepoPaths.NewTempDir("safetensors-fuzz");

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    byte[] Original()
    {
        string path = Path.Combine(_dir, "original.safetensors");
        using var scope = torch.NewDisposeScope();
        var g = new Generator(1);
        SafetensorsWriter.Write(path, new Dictionary<string, Tensor>
        {
            ["blocks.0.attn.qkv.weight"] = torch.randn([6, 4], generator: g),
            ["blocks.0.attn.qkv.bias"] = torch.randn([6], generator: g),
            ["y_embedder.embedding_table.weight"] = torch.randn([3, 4], generator: g).to(ScalarType.BFloat16),
            ["steps"] = torch.tensor(7L),
        }, new Dictionary<string, string> { ["ldm.config"] = "{\"kind\":\"x\"}", ["format"] = "pt" });
        return File.ReadAllBytes(path);
    }

    /// <summary>Opens and reads every tensor; returns the exception that is not an LdmException, if any.</summary>
    Exception? Probe(byte[] bytes, string name)
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, bytes);
        try
        {
            using var file = SafetensorsFile.Open(path);
            using var scope = torch.NewDisposeScope();
            foreach (var (_, t) in file.ReadAll()) t.Dispose();
            return null;
        }
        catch (LdmException) { return null; }
        catch (Exception e) { return e; }
        finally { File.Delete(path); }
    }

    [Fact]
    public void RandomHeaderMutationsGiveAnLdmExceptionOrALoadedFile()
    {
        var original = Original();
        int headerEnd = 8 + (int)BitConverter.ToUInt64(original, 0);
        var failures = new List<string>();
        for (int seed = 0; seed < 5000 && failures.Count < 5; seed++)
        {
            var rng = new Random(seed);
            var bytes = (byte[])original.Clone();
            int changes = 1 + rng.Next(8);
            for (int i = 0; i < changes; i++)
            {
                // Mostly the JSON header (where the parsing is), now and then the length prefix or the data.
                int at = rng.Next(10) switch { 0 => rng.Next(8), 1 => rng.Next(bytes.Length), _ => 8 + rng.Next(headerEnd - 8) };
                bytes[at] = rng.Next(3) == 0 ? (byte)rng.Next(256) : (byte)"{}[]\",:0123456789-e.\\\u00ff"[rng.Next(22)];
            }
            if (Probe(bytes, $"m{seed}.safetensors") is { } e) failures.Add($"seed {seed}: {e.GetType().Name}: {e.Message.Split('\n')[0]}");
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Theory]
    [InlineData("invalid-utf8")]
    [InlineData("repeated-name")]
    public void AHeaderNameThatIsNotUtf8OrIsRepeatedIsACorruptFile(string kind)
    {
        var original = Original();
        int headerLength = (int)BitConverter.ToUInt64(original, 0);
        string header = Encoding.UTF8.GetString(original, 8, headerLength);
        byte[] newHeader;
        if (kind == "invalid-utf8")
        {
            newHeader = Encoding.UTF8.GetBytes(header);
            int at = Encoding.UTF8.GetBytes(header[..header.IndexOf("steps", StringComparison.Ordinal)]).Length;
            newHeader[at] = 0xC3; newHeader[at + 1] = 0x28; // a two-byte sequence whose second byte is not a continuation
        }
        else newHeader = Encoding.UTF8.GetBytes(header.Replace("\"blocks.0.attn.qkv.bias\"", "\"blocks.0.attn.qkv.weight\""));
        var bytes = new byte[8 + newHeader.Length + (original.Length - 8 - headerLength)];
        BitConverter.GetBytes((ulong)newHeader.Length).CopyTo(bytes, 0);
        newHeader.CopyTo(bytes, 8);
        Array.Copy(original, 8 + headerLength, bytes, 8 + newHeader.Length, original.Length - 8 - headerLength);
        string path = Path.Combine(_dir, kind + ".safetensors");
        File.WriteAllBytes(path, bytes);
        var error = Assert.Throws<LdmException>(() => { using var f = SafetensorsFile.Open(path); });
        Assert.Contains(path, error.Message);
    }
}
