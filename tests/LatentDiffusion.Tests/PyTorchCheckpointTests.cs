using System.Collections;
using System.IO.Compression;
using LatentDiffusion.IO;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests;

public class PyTorchCheckpointTests
{
    static Dictionary<string, Tensor> SampleStateDict(int seed)
    {
        var g = new Generator((ulong)seed);
        return new()
        {
            ["blocks.0.attn.qkv.weight"] = torch.randn(new long[] { 6, 2 }, generator: g),
            ["blocks.0.attn.qkv.bias"] = torch.randn(new long[] { 6 }, generator: g),
            ["pos_embed"] = torch.randn(new long[] { 1, 4, 2 }, generator: g),
            ["num_batches_tracked"] = torch.tensor(7L),
            ["y_embedder.embedding_table.weight"] = torch.randn(new long[] { 3, 2 }, generator: g).to(ScalarType.BFloat16),
        };
    }

    static Hashtable Table(IReadOnlyDictionary<string, Tensor> d, string prefix = "")
    {
        var t = new Hashtable();
        foreach (var (k, v) in d) t[prefix + k] = v;
        return t;
    }

    /// <summary>Writes a torch.save-format file with PyBridge's own pickler.</summary>
    static string WritePt(string name, Hashtable root)
    {
        string path = Path.Combine(RepoPaths.NewTempDir("pt"), name);
        using (var fs = File.Create(path)) PyTorchPickler.PickleStateDict(fs, root);
        return path;
    }

    static void AssertSame(IReadOnlyDictionary<string, Tensor> expected, IReadOnlyDictionary<string, Tensor> actual)
    {
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (k, v) in expected)
        {
            Assert.Equal(v.dtype, actual[k].dtype);
            Assert.Equal(v.shape, actual[k].shape);
            Assert.True(v.equal(actual[k]).all().item<bool>(), $"tensor {k} differs");
        }
    }

    [Fact]
    public void PlainStateDictRoundTrips()
    {
        var sd = SampleStateDict(1);
        string path = WritePt("model.pt", Table(sd));
        AssertSame(sd, PyTorchCheckpoint.Load(path));
        AssertSame(sd, CheckpointImport.LoadAny(path));
    }

    [Fact]
    public void SaveWritesAFileLoadReads()
    {
        var sd = SampleStateDict(2);
        string path = Path.Combine(RepoPaths.NewTempDir("pt"), "saved.pth");
        PyTorchCheckpoint.Save(path, sd);
        Assert.True(PyTorchCheckpoint.LooksLikeTorchSave(path));
        AssertSame(sd, PyTorchCheckpoint.Load(path));
    }

    [Theory]
    [InlineData("state_dict", "last.ckpt")]
    [InlineData("model", "model.bin")]
    [InlineData("module", "model.pth")]
    public void CommonWrappersAreUnwrapped(string wrapper, string name)
    {
        var sd = SampleStateDict(3);
        var root = new Hashtable { [wrapper] = Table(sd), ["epoch"] = 12, ["global_step"] = 3400, ["note"] = "hello" };
        AssertSame(sd, PyTorchCheckpoint.Load(WritePt(name, root)));
    }

    [Fact]
    public void DitTrainingCheckpointPrefersEmaAndKeySelects()
    {
        var model = SampleStateDict(4);
        var ema = SampleStateDict(5);
        var root = new Hashtable
        {
            ["model"] = Table(model),
            ["ema"] = Table(ema),
            ["opt"] = new Hashtable { ["state"] = new Hashtable { ["0"] = new Hashtable { ["exp_avg"] = torch.zeros(6, 2) } } },
        };
        string path = WritePt("0100000.pt", root);
        AssertSame(ema, PyTorchCheckpoint.Load(path));
        AssertSame(model, PyTorchCheckpoint.Load(path, key: "model"));
        var e = Assert.Throws<LdmException>(() => PyTorchCheckpoint.Load(path, key: "weights"));
        Assert.Contains(path, e.Message);
        Assert.Contains("ema", e.Message);
    }

    [Fact]
    public void NestedWrappersAndDataParallelPrefix()
    {
        var sd = SampleStateDict(6);
        var root = new Hashtable { ["model"] = new Hashtable { ["state_dict"] = Table(sd, "module.") } };
        AssertSame(sd, PyTorchCheckpoint.Load(WritePt("dp.pt", root)));
    }

    [Fact]
    public void LoadAnyReadsSafetensorsByContentAndFolders()
    {
        var sd = SampleStateDict(7);
        string dir = RepoPaths.NewTempDir("st");
        string st = Path.Combine(dir, "diffusion_pytorch_model.safetensors");
        SafetensorsWriter.Write(st, sd);
        AssertSame(sd, CheckpointImport.LoadAny(st));
        string renamed = Path.Combine(dir, "weights.bin");
        File.Copy(st, renamed);
        AssertSame(sd, CheckpointImport.LoadAny(renamed));
        AssertSame(sd, CheckpointImport.LoadAny(dir));
        Assert.Throws<LdmException>(() => CheckpointImport.LoadAny(st, key: "ema"));
        var e = Assert.Throws<LdmException>(() => CheckpointImport.LoadAny(RepoPaths.NewTempDir("empty")));
        Assert.Contains("diffusion_pytorch_model.safetensors", e.Message);
    }

    [Fact]
    public void NonCheckpointFilesAreErrors()
    {
        string dir = RepoPaths.NewTempDir("pt");
        string text = Path.Combine(dir, "notes.pt");
        File.WriteAllText(text, "definitely not a checkpoint");
        var e = Assert.Throws<LdmException>(() => PyTorchCheckpoint.Load(text));
        Assert.Contains(text, e.Message);
        Assert.Contains("torch.save", e.Message);
        e = Assert.Throws<LdmException>(() => CheckpointImport.LoadAny(text));
        Assert.Contains(text, e.Message);

        string empty = Path.Combine(dir, "empty.ckpt");
        File.WriteAllBytes(empty, Array.Empty<byte>());
        e = Assert.Throws<LdmException>(() => CheckpointImport.LoadAny(empty));
        Assert.Contains("empty", e.Message);

        string zip = Path.Combine(dir, "other.pth");
        using (var z = ZipFile.Open(zip, ZipArchiveMode.Create)) z.CreateEntry("readme.txt");
        e = Assert.Throws<LdmException>(() => PyTorchCheckpoint.Load(zip));
        Assert.Contains("data.pkl", e.Message);

        string legacy = Path.Combine(dir, "legacy.pt");
        File.WriteAllBytes(legacy, new byte[] { 0x80, 0x02, 0x8A, 0x0A, 0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20 });
        e = Assert.Throws<LdmException>(() => PyTorchCheckpoint.Load(legacy));
        Assert.Contains("legacy", e.Message);

        string noTensors = WritePt("meta.pt", new Hashtable { ["epoch"] = 1, ["args"] = new Hashtable { ["lr"] = 0.1 } });
        e = Assert.Throws<LdmException>(() => PyTorchCheckpoint.Load(noTensors));
        Assert.Contains("no tensors", e.Message);

        Assert.Throws<LdmException>(() => PyTorchCheckpoint.Load(Path.Combine(dir, "missing.pt")));
    }
}
