using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;
using LatentDiffusion.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests;

/// <summary>
/// Issue 2's bad inputs, through the real `ldm` command line: each must end with exit code != 0, exactly one stderr line
/// <c>error: ...</c> that names the problem (a key word is asserted) without a stack trace, and no new or partial file.
/// </summary>
[Collection(ConsoleCollection.Name)]
public sealed class CliBadInputTests : IDisposable
{
    readonly string _dir = RepoPaths.NewTempDir("cli-bad");
    string Out => Path.Combine(_dir, "out");

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    /// <summary>Runs ldm and checks the one-line user error and that no file appeared anywhere under the test folder.</summary>
    CliResult Fails(string keyword, params string[] args)
    {
        var before = Snapshot();
        var r = CliTestHost.Run(args);
        Assert.True(r.ExitCode != 0, $"expected failure for `ldm {string.Join(' ', args)}`\n{r}");
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.True(lines.Length == 1, $"stderr must be one line\n{r}");
        Assert.StartsWith("error: ", lines[0]);
        Assert.Contains(keyword, lines[0], StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("   at ", r.Stderr + r.Stdout);
        Assert.DoesNotContain("Exception", lines[0]);
        var added = Snapshot().Except(before).ToList();
        Assert.True(added.Count == 0, $"files left behind: {string.Join(", ", added)}\n{r}");
        return r;
    }

    List<string> Snapshot() => Directory.EnumerateFiles(_dir, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(_dir, f)).Order().ToList();

    string Checkpoint() => TinyModels.SaveCheckpoint(_dir);

    string WriteBytes(string name, byte[] bytes)
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    /// <summary>A safetensors file from a raw header text and data bytes (header length as written).</summary>
    string RawSafetensors(string name, string header, int dataBytes, ulong? headerLength = null)
    {
        var json = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + json.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, headerLength ?? (ulong)json.Length);
        json.CopyTo(bytes, 8);
        return WriteBytes(name, bytes);
    }

    /// <summary>The command with its default option values, each replaced where <paramref name="overrides"/> (option, value pairs) names it.</summary>
    static string[] Args(string command, string[] defaults, string[] overrides)
    {
        var given = overrides.Where((_, i) => i % 2 == 0).ToHashSet();
        var args = new List<string> { command };
        for (int i = 0; i < defaults.Length; i += 2)
            if (!given.Contains(defaults[i])) args.AddRange([defaults[i], defaults[i + 1]]);
        args.AddRange(overrides);
        return args.ToArray();
    }

    string[] Sample(string model, params string[] more) =>
        Args("sample", ["--model", model, "--out", Out, "--steps", "2", "--num", "2"], more);

    // ---- ldm sample: files ----

    [Fact]
    public void Sample_MissingModelFile() => Fails("not found", Sample(Path.Combine(_dir, "nope.safetensors")));

    [Fact]
    public void Sample_FolderInsteadOfFile()
    {
        Directory.CreateDirectory(Path.Combine(_dir, "afolder"));
        Fails("folder", Sample(Path.Combine(_dir, "afolder")));
    }

    [Fact]
    public void Sample_ZeroByteFile() => Fails("0 bytes", Sample(WriteBytes("empty.safetensors", [])));

    [Fact]
    public void Sample_TruncatedCheckpoint()
    {
        var bytes = File.ReadAllBytes(Checkpoint());
        Fails("truncated", Sample(WriteBytes("half.safetensors", bytes[..(bytes.Length / 2)])));
    }

    [Fact]
    public void Sample_CheckpointCutInsideHeader()
    {
        var bytes = File.ReadAllBytes(Checkpoint());
        Fails("header length", Sample(WriteBytes("cut.safetensors", bytes[..100])));
    }

    [Fact]
    public void Sample_BadHeaderLength() =>
        Fails("header length", Sample(RawSafetensors("badlen.safetensors", "{}", 16, headerLength: 1UL << 40)));

    [Fact]
    public void Sample_HeaderNotJson() => Fails("JSON", Sample(RawSafetensors("notjson.safetensors", "{\"w\": [1, 2,", 8)));

    [Fact]
    public void Sample_HeaderJsonNotObject() => Fails("JSON object", Sample(RawSafetensors("array.safetensors", "[1, 2, 3]", 8)));

    [Fact]
    public void Sample_OffsetsOutsideFile() =>
        Fails("offsets", Sample(RawSafetensors("offsets.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,800]}}", 8)));

    [Fact]
    public void Sample_EntryWithoutDtype() =>
        Fails("dtype", Sample(RawSafetensors("nodtype.safetensors", "{\"w\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8)));

    [Fact]
    public void Sample_SafetensorsWithoutLdmConfig()
    {
        string path = Path.Combine(_dir, "plain.safetensors");
        using (var t = torch.ones(4))
            SafetensorsWriter.Write(path, new Dictionary<string, Tensor> { ["w"] = t });
        Fails("ldm model config", Sample(path));
    }

    [Fact]
    public void Sample_CheckpointOfAnotherModelKind()
    {
        string path = Path.Combine(_dir, "classifier.safetensors");
        using (var t = torch.ones(4))
            ModelCheckpoint.Save(path, "classifier", new JsonObject { ["classes"] = 10 }, new Dictionary<string, Tensor> { ["w"] = t });
        Fails("classifier", Sample(path));
    }

    /// <summary>A real checkpoint whose config metadata is replaced (the weights stay those of the tiny model).</summary>
    string WithEditedConfig(string name, Action<JsonObject> edit)
    {
        using var file = SafetensorsFile.Open(Checkpoint());
        var meta = file.Metadata.ToDictionary();
        var config = JsonNode.Parse(meta[ModelCheckpoint.ConfigKey])!.AsObject();
        edit(config);
        meta[ModelCheckpoint.ConfigKey] = config.ToJsonString();
        string path = Path.Combine(_dir, name);
        var tensors = file.ReadAll();
        SafetensorsWriter.Write(path, tensors, meta);
        foreach (var t in tensors.Values) t.Dispose();
        return path;
    }

    [Fact]
    public void Sample_ConfigHiddenNotDivisibleByHeads() =>
        Fails("divisible", Sample(WithEditedConfig("heads.safetensors", c => c["transformer"]!["num_heads"] = 3)));

    [Fact]
    public void Sample_ConfigImageNotDivisibleByPatch() =>
        Fails("divisible", Sample(WithEditedConfig("patch.safetensors", c => c["transformer"]!["patch_size"] = 3)));

    [Fact]
    public void Sample_ConfigUnknownBlock() =>
        Fails("transformer config", Sample(WithEditedConfig("block.safetensors", c => c["transformer"]!["block"] = "bogus")));

    [Fact]
    public void Sample_ConfigNotMatchingWeights() =>
        Fails("do not fit", Sample(WithEditedConfig("wide.safetensors", c => c["transformer"]!["hidden_size"] = 64)));

    [Fact]
    public void Sample_ConfigUnknownSpace() =>
        Fails("space", Sample(WithEditedConfig("space.safetensors", c => c["space"] = "fourier")));

    // ---- ldm sample: options ----

    [Theory]
    [InlineData("99")]
    [InlineData("12")]
    [InlineData("-1")]
    [InlineData("3,40")]
    [InlineData("10-13")]
    public void Sample_ClassIdOutOfRange(string classes) => Fails("outside", Sample(Checkpoint(), "--classes", classes));

    [Theory]
    [InlineData("abc")]
    [InlineData("1.5")]
    [InlineData("5-2")]
    [InlineData(",")]
    public void Sample_BadClassesText(string classes) => Fails("--classes", Sample(Checkpoint(), "--classes", classes));

    [Fact]
    public void Sample_BadSampler() => Fails("sampler", Sample(Checkpoint(), "--sampler", "euler"));

    [Fact]
    public void Sample_BadDtype() => Fails("--dtype", Sample(Checkpoint(), "--dtype", "fp8"));

    [Fact]
    public void Sample_ZeroSteps() => Fails("--steps", Sample(Checkpoint(), "--steps", "0"));

    [Fact]
    public void Sample_ZeroNum() => Fails("--num", Sample(Checkpoint(), "--num", "0"));

    [Fact]
    public void Sample_NegativeGuidance() => Fails("--guidance", Sample(Checkpoint(), "--guidance", "-2"));

    [Fact]
    public void Sample_OutIsAFile()
    {
        string model = Checkpoint();
        string file = WriteBytes("taken", [1, 2, 3]);
        Fails("is a file", ["sample", "--model", model, "--out", file, "--steps", "2", "--num", "2"]);
    }

    // ---- command lines that do not parse ----

    [Fact]
    public void Sample_StepsNotANumber() => Fails("--steps", Sample(Checkpoint(), "--steps", "many"));

    [Fact]
    public void Sample_MissingRequiredModel() => Fails("--model", "sample", "--out", Out);

    [Fact]
    public void UnknownCommand() => Fails("smaple", "smaple", "--model", "x");

    [Fact]
    public void UnknownOption() => Fails("--colour", Sample(Checkpoint(), "--colour", "red"));

    [Fact]
    public void NoCommand() => Fails("command", []);

    [Fact]
    public void Help_IsNotAnError()
    {
        var r = CliTestHost.Run("sample", "--help");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("--model", r.Stdout);
        Assert.Empty(r.Stderr);
    }

    // ---- ldm train ----

    string[] Train(params string[] more) =>
        Args("train", ["--out", Out, "--num-images", "16", "--steps", "2", "--batch-size", "4", "--hidden-size", "32", "--depth", "1", "--num-heads", "2", "--patch-size", "8"], more);

    void NoFilesInOut() => Assert.Empty(Directory.Exists(Out) ? Directory.EnumerateFileSystemEntries(Out, "*", SearchOption.AllDirectories) : []);

    [Fact]
    public void Train_UnknownPreset()
    {
        Fails("preset", Train("--preset", "Z/3"));
        NoFilesInOut();
    }

    [Fact]
    public void Train_HiddenSizeNotDivisibleByHeads()
    {
        Fails("divisible", Train("--hidden-size", "100", "--num-heads", "3"));
        NoFilesInOut();
    }

    [Fact]
    public void Train_PatchSizeNotDividingImage()
    {
        Fails("divisible", Train("--patch-size", "5"));
        NoFilesInOut();
    }

    [Fact]
    public void Train_MissingDataFolder() => Fails("--data", Train("--data", Path.Combine(_dir, "no-such-folder")));

    [Fact]
    public void Train_EmptyDataFolder()
    {
        Directory.CreateDirectory(Path.Combine(_dir, "empty"));
        Fails("no class subfolders", Train("--data", Path.Combine(_dir, "empty")));
        NoFilesInOut();
    }

    [Fact]
    public void Train_ClassFolderWithoutImages()
    {
        Directory.CreateDirectory(Path.Combine(_dir, "data", "cat"));
        Fails("no images", Train("--data", Path.Combine(_dir, "data")));
    }

    [Fact]
    public void Train_ZeroSteps() => Fails("--steps", Train("--steps", "0"));

    [Fact]
    public void Train_BadLearningRate() => Fails("--lr", Train("--lr", "-1"));

    [Fact]
    public void Train_UnknownBlock() => Fails("--block", Train("--block", "mamba"));

    [Fact]
    public void Train_ResumeWithAnotherModel()
    {
        // A one-step run made by the trainer itself (the CLI would also sample a grid at the end, which costs seconds).
        using (var data = Data.ShapesDataset.Generate(16, 0, text: false))
        using (var trainer = new Training.DiffusionTrainer(TinyModels.Info(TinyModels.Config(size: 32)), new Training.PixelTrainingData(data),
                   new Training.DiffusionTrainingOptions { Steps = 1, BatchSize = 4 }, Out))
            trainer.Run();
        string checkpoint = Path.Combine(Out, Training.DiffusionTrainer.CheckpointFile);
        var before = File.ReadAllBytes(checkpoint);
        Fails("hidden_size", Train("--hidden-size", "64"));
        Assert.Equal(before, File.ReadAllBytes(checkpoint));
    }

    // ---- ldm bench ----

    [Fact]
    public void Bench_UnknownPreset() => Fails("preset", "bench", "--preset", "M/2", "--runs", "1", "--warmup", "0");
}
