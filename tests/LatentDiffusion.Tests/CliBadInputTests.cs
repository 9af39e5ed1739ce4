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
        Args("train", ["--out", Out, "--data", "shapes:count=16", "--steps", "2", "--batch-size", "4", "--hidden-size", "32", "--depth", "1", "--num-heads", "2", "--patch-size", "8"], more);

    [Theory]
    [InlineData("--block", "adaln-zero")]
    [InlineData("--long-skips", null)]
    [InlineData("--patch-size", "4")]
    [InlineData("--preset", "B/2")]
    public void Train_TransformerOptionWithUNetBackbone(string option, string? value) =>
        Fails("applies to the Transformer", value is null
            ? ["train", "--out", Out, "--data", "shapes:count=16", "--backbone", "unet", option]
            : ["train", "--out", Out, "--data", "shapes:count=16", "--backbone", "unet", option, value]);

    [Theory]
    [InlineData("--unet-preset", "UNet-B")]
    [InlineData("--model-channels", "64")]
    [InlineData("--channel-mult", "1,2")]
    public void Train_UNetOptionWithTransformerBackbone(string option, string value) =>
        Fails("applies to the UNet", Train(option, value));

    [Fact]
    public void Train_UnknownBackboneOrUNetPreset()
    {
        Fails("--backbone", "train", "--out", Out, "--data", "shapes:count=16", "--backbone", "resnet");
        Fails("UNet preset", "train", "--out", Out, "--data", "shapes:count=16", "--backbone", "unet", "--unet-preset", "UNet-Q");
        Fails("--channel-mult", "train", "--out", Out, "--data", "shapes:count=16", "--backbone", "unet", "--channel-mult", "1,two");
        Fails("applies to the Transformer", "bench", "--backbone", "unet", "--block", "adaln-zero");
    }

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

    [Theory]
    [InlineData("0")]
    [InlineData("-3")]
    public void Train_SampleStepsBelowOne(string steps) => Fails($"--sample-steps must be at least 1, got {steps}", Train("--sample-steps", steps));

    [Fact]
    public void Train_BadLearningRate() => Fails("--lr", Train("--lr", "-1"));

    [Fact]
    public void Train_UnknownBlock() => Fails("--block", Train("--block", "mamba"));

    [Theory]
    [InlineData("--noise-schedule must be one of linear, cosine, scaled-linear, got quadratic", "--noise-schedule", "quadratic")]
    [InlineData("our scaled-linear", "--noise-schedule", "sqrt_linear")]
    [InlineData("--beta-start must be left out with the linear schedule, got 0.001", "--beta-start", "0.001")]
    [InlineData("--beta-end must be left out with the cosine schedule, got 0.02", "--noise-schedule", "cosine", "--beta-end", "0.02")]
    [InlineData("--beta-start must be in (0, 1), got 0", "--noise-schedule", "scaled-linear", "--beta-start", "0")]
    [InlineData("--beta-end must be in (0, 1), got 1.5", "--noise-schedule", "scaled-linear", "--beta-end", "1.5")]
    [InlineData("--beta-end must be greater than the start 0.02, got 0.0195", "--noise-schedule", "scaled-linear", "--beta-start", "0.02")]
    public void Train_BadNoiseSchedule(string message, params string[] options)
    {
        Fails(message, Train(options));
        NoFilesInOut();
    }

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
    public void Bench_UnknownPreset() => Fails("preset", "bench", "--preset", "M/2", "--runs", "1", "--warmup-runs", "0");

    // ---- one grammar: the common options ----

    /// <summary>Each command with the common options that apply to it (what it reads, writes, runs).</summary>
    public static TheoryData<string, string> CommonOptionsByCommand()
    {
        var data = new TheoryData<string, string>();
        void Add(string command, params string[] options) { foreach (var o in options) data.Add(command, o); }
        string[] runtime = ["--threads", "--device"];
        Add("train", ["--data", "--out", "--seed", "--dtype", .. runtime]);
        Add("train-autoencoder", ["--data", "--out", "--seed", .. runtime]);
        Add("encode", ["--data", "--out", "--seed", .. runtime]);
        Add("train-classifier", ["--data", "--out", "--seed", .. runtime]);
        Add("sample", ["--model", "--out", "--num", "--dtype", "--seed", "--sampler", .. runtime]);
        Add("evaluate", ["--model", "--out", "--num", "--dtype", "--seed", "--sampler", .. runtime]);
        Add("check-shapes", ["--model", "--out", "--num", "--dtype", "--seed", "--sampler", .. runtime]);
        Add("quickstart", ["--out", "--seed", .. runtime]);
        Add("bench", ["--dtype", .. runtime]);
        Add("convert", "--out", "--dtype");
        Add("export", "--model", "--out", "--dtype");
        Add("plot", "--out");
        return data;
    }

    [Theory]
    [MemberData(nameof(CommonOptionsByCommand))]
    public void EveryCommandListsItsCommonOptions(string command, string option)
    {
        var r = CliTestHost.Run(command, "--help");
        Assert.True(r.ExitCode == 0, r.ToString());
        // Help lists an option at the start of a line: "  -o, --out <out>  ...".
        Assert.Matches(new System.Text.RegularExpressions.Regex($@"(?m)^\s+(-\w, )?{System.Text.RegularExpressions.Regex.Escape(option)}\b"), r.Stdout);
    }

    [Theory]
    [InlineData("sample")]
    [InlineData("evaluate")]
    [InlineData("check-shapes")]
    public void SamplerHelpNamesEverySampler(string command)
    {
        var r = CliTestHost.Run(command, "--help");
        foreach (var kind in Enum.GetValues<Diffusion.SamplerKind>())
            Assert.Contains(Cli.Grammar.SamplerNames.Of(kind), r.Stdout);
    }

    [Theory]
    [InlineData("convert", "--output")]
    [InlineData("evaluate", "--fashion-mnist-dir")]
    [InlineData("train-classifier", "--fashion-mnist-dir")]
    public void RemovedSpellingsAreRefused(string command, string option) =>
        Fails(option, command, "x", option, "y");

    // ---- one grammar: data-set specs ----

    /// <summary>Every command that reads data, with a spec in the place of <c>{}</c>.</summary>
    string[] ReadingData(string command, string spec) => command switch
    {
        "train" => Train("--data", spec),
        "train-autoencoder" => ["train-autoencoder", "--data", spec, "--out", Out, "--steps", "1"],
        "encode" => ["encode", "--autoencoder", Path.Combine(_dir, "ae.safetensors"), "--data", spec, "--out", Out],
        "train-classifier" => ["train-classifier", "--data", spec, "--out", Path.Combine(_dir, "clf.safetensors")],
        "evaluate --samples" => ["evaluate", "--samples", spec, "--reference", "shapes", "--out", Path.Combine(_dir, "e.json")],
        "evaluate --reference" => ["evaluate", "--samples", "shapes", "--reference", spec, "--out", Path.Combine(_dir, "e.json")],
        _ => throw new ArgumentException(command),
    };

    public static TheoryData<string, string> BadSpecs()
    {
        var data = new TheoryData<string, string>();
        foreach (var command in new[] { "train", "train-autoencoder", "encode", "train-classifier", "evaluate --samples", "evaluate --reference" })
            foreach (var spec in new[] { "mnist:train", "shapes:count=0", "shapes:colour=red", "fashion-mnist:validation", "shapes:seed=-1", "" })
                data.Add(command, spec);
        return data;
    }

    [Theory]
    [MemberData(nameof(BadSpecs))]
    public void BadDataSpecsSayWhatToWrite(string command, string spec)
    {
        var r = Fails(command.Split(' ').Last() == "--reference" ? "--reference" : command.StartsWith("evaluate") ? "--samples" : "--data", ReadingData(command, spec));
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("write", r.Stderr);
    }

    [Fact]
    public void ALatentCacheIsNotImagesForTheAutoencoder()
    {
        string cache = Directory.CreateDirectory(Path.Combine(_dir, "cache")).FullName;
        File.WriteAllText(Path.Combine(cache, Data.LatentCache.IndexFile), "{}");
        Fails("latent cache", ReadingData("train-autoencoder", cache));
    }

    [Fact]
    public void AFileThatIsNotAnNpzIsNotAReference() =>
        Fails("not an .npz", ReadingData("evaluate --reference", WriteBytes("ref.txt", [1])));

    [Fact]
    public void DataSpecGrammar()
    {
        var shapes = Cli.Grammar.DataSetSpec.Parse("shapes-text:count=2000,seed=3", "--data");
        Assert.Equal((Cli.Grammar.DataSetKind.ShapesText, 2000, 3), (shapes.Kind, shapes.Count!.Value, shapes.Seed!.Value));
        Assert.Null(shapes.TwoShapePercent);
        Assert.Equal(80, Cli.Grammar.DataSetSpec.Parse("shapes-text:two=80", "--data").TwoShapePercent);
        Assert.Contains("0 to 100", Assert.Throws<LdmException>(() => Cli.Grammar.DataSetSpec.Parse("shapes-text:two=101", "--data")).Message);
        Assert.Contains("unknown parameter 'two=80'", Assert.Throws<LdmException>(() => Cli.Grammar.DataSetSpec.Parse("shapes:two=80", "--data")).Message);
        var test = Cli.Grammar.DataSetSpec.Parse("fashion-mnist:test,dir=/data/fm", "--data");
        Assert.Equal((Cli.Grammar.DataSetKind.FashionMnist, false, "/data/fm"), (test.Kind, test.Train, test.FashionMnistFolder));
        Assert.True(Cli.Grammar.DataSetSpec.Parse("fashion-mnist", "--data").Train);
        Assert.Equal(Cli.Grammar.DataSetKind.ImageFolder, Cli.Grammar.DataSetSpec.Parse(_dir, "--data").Kind);
        File.WriteAllText(Path.Combine(_dir, Data.CaptionedFolderDataset.MetadataFileName), "");
        Assert.Equal(Cli.Grammar.DataSetKind.CaptionedFolder, Cli.Grammar.DataSetSpec.Parse(_dir, "--data").Kind);
    }

    // ---- one grammar: dtypes, devices, samplers ----

    public static TheoryData<string> DtypeCommands() => ["train", "bench", "convert", "evaluate", "sample", "export", "check-shapes"];

    /// <summary>A command line of <paramref name="command"/> that reaches its option checks.</summary>
    string[] Running(string command, params string[] more)
    {
        string[] head = command switch
        {
            "train" => Train(),
            "bench" => ["bench", "--runs", "1", "--warmup-runs", "0"],
            "convert" => ["convert", Path.Combine(_dir, "in.pt"), "--out", Path.Combine(_dir, "c.safetensors")],
            "evaluate" => ["evaluate", "--samples", "shapes", "--reference", "shapes", "--out", Path.Combine(_dir, "e.json")],
            "sample" => Sample(Checkpoint()),
            "export" => ["export", "--model", Checkpoint(), "--out", Path.Combine(_dir, "x.safetensors")],
            "check-shapes" => ["check-shapes", "--model", Checkpoint()],
            "train-autoencoder" => ["train-autoencoder", "--out", Out, "--steps", "1"],
            "encode" => ["encode", "--autoencoder", Path.Combine(_dir, "ae.safetensors"), "--out", Out],
            "train-classifier" => ["train-classifier", "--out", Path.Combine(_dir, "clf.safetensors")],
            "quickstart" => ["quickstart", "--out", Out],
            _ => throw new ArgumentException(command),
        };
        return [.. head, .. more];
    }

    [Theory]
    [MemberData(nameof(DtypeCommands))]
    public void BadDtypeSaysWhatToWrite(string command)
    {
        var r = Fails("--dtype", Running(command, "--dtype", "bfloat16"));
        Assert.Contains("bf16", r.Stderr);
    }

    [Fact]
    public void F16WhereOnlyFloat32AndBf16RunSaysSo() => Fails("float32 or bf16", Running("train", "--dtype", "f16"));

    public static TheoryData<string> ModelCommands() =>
        ["train", "train-autoencoder", "encode", "train-classifier", "sample", "evaluate", "check-shapes", "quickstart", "bench"];

    [Theory]
    [MemberData(nameof(ModelCommands))]
    public void BadDeviceSaysWhatToWrite(string command)
    {
        Fails("cpu, cuda, cuda:N or auto", Running(command, "--device", "gpu"));
        // No machine here has 100 GPUs: refused with or without CUDA.
        Fails("--device cuda:99", Running(command, "--device", "cuda:99"));
        if (!TorchSharp.torch.cuda.is_available()) Fails("CUDA is not available", Running(command, "--device", "cuda"));
        Fails("--threads", Running(command, "--threads", "0"));
    }

    [Fact]
    public void DeviceNamesParse()
    {
        Assert.Equal(TorchSharp.DeviceType.CPU, Cli.Grammar.DeviceNames.Parse("cpu").type);
        Assert.Equal(TorchSharp.torch.cuda.is_available() ? TorchSharp.DeviceType.CUDA : TorchSharp.DeviceType.CPU, Cli.Grammar.DeviceNames.Parse("auto").type);
    }

    [Theory]
    [InlineData("sample")]
    [InlineData("evaluate")]
    [InlineData("check-shapes")]
    public void BadSamplerSaysWhatToWrite(string command) => Fails("ddim, ddpm or dpm++2m", Running(command, "--sampler", "dpmsolverpp2m"));

    [Fact]
    public void EverySamplerNameRoundTrips()
    {
        foreach (var kind in Enum.GetValues<Diffusion.SamplerKind>())
            Assert.Equal(kind, Cli.Grammar.SamplerNames.Parse(Cli.Grammar.SamplerNames.Of(kind)));
    }

    /// <summary>The sampler name a report records is one --sampler accepts (reports used to print "dpmsolverpp2m").</summary>
    [Fact]
    public void TheSamplerNameInAReportIsAcceptedBySampler()
    {
        string clf = Path.Combine(_dir, "clf.safetensors");
        var config = new Evaluation.DomainClassifierConfig { Channels = 3, ImageSize = 32, ClassNames = Data.ShapesDataset.ClassNames.ToArray(), Widths = [8, 16, 16], FeatureDim = 16 };
        using (var classifier = Evaluation.DomainClassifierTrainer.Create(config, seed: 1)) classifier.Save(clf);
        string json = Path.Combine(_dir, "report.json");
        var evaluate = CliTestHost.Run("evaluate", "--samples", "shapes:count=8", "--reference", "shapes:count=8,seed=1", "--features", $"classifier:{clf}",
            "--no-precision-recall", "--sampler", "dpm++2m", "--out", json);
        Assert.True(evaluate.ExitCode == 0, evaluate.ToString());
        string recorded = Evaluation.EvaluationReport.Load(json).Sampler!;
        Assert.Equal("dpm++2m", recorded);
        var sample = CliTestHost.Run(Sample(Checkpoint(), "--sampler", recorded));
        Assert.True(sample.ExitCode == 0, sample.ToString());
        Assert.Contains($"({recorded}, 2 steps", sample.Stdout);
    }

    /// <summary>Spellings that docs/performance.md records still run, each with one note naming its replacement, and stay out of help.</summary>
    [Fact]
    public void DeprecatedSpellingsStillWorkWithOneNote()
    {
        var r = CliTestHost.Run("bench", "--preset", "S/8", "--input-size", "8", "--channels", "1", "-b", "2", "--only", "sample", "--sample-steps", "1",
            "--runs", "1", "--classes", "3", "--warmup", "0");
        Assert.True(r.ExitCode == 0, r.ToString());
        var notes = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.Equal(["note: `--warmup 0` is deprecated; write `--warmup-runs 0`.", "note: `--classes 3` is deprecated; write `--num-classes 3`."], notes);
        var help = CliTestHost.Run("bench", "--help").Stdout;
        Assert.DoesNotContain("--warmup ", help);
        Assert.DoesNotContain("--classes ", help);
    }

    // ldm serve: bad options are one-line errors before anything listens.
    [Fact]
    public void Serve_MissingModelsFolder() => Fails("is not a folder", "serve", "--models", Path.Combine(_dir, "nope"));

    [Fact]
    public void Serve_HostNotAnAddress() => Fails("--host", "serve", "--models", _dir, "--host", "example.invalid");

    [Fact]
    public void Serve_PortOutOfRange() => Fails("--port", "serve", "--models", _dir, "--port", "70000");

    [Fact]
    public void Serve_NegativeQueue() => Fails("--queue", "serve", "--models", _dir, "--queue", "-1");
}
