using System.IO.Compression;
using LatentDiffusion.Denoisers;
using LatentDiffusion.Diffusion;
using LatentDiffusion.Evaluation;
using LatentDiffusion.IO;
using LatentDiffusion.Pipelines;
using LatentDiffusion.Transformers;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests;

public sealed class EvaluationTests
{
    /// <summary>Gray 28×28 uint8 images of filled circles (0), squares (1) and triangles (2), random size and place.</summary>
    internal static (Tensor images, Tensor labels) Shapes(int n, long seed, int size = 28)
    {
        using var scope = torch.NewDisposeScope();
        using var g = new Generator((ulong)seed);
        var labels = torch.randint(0, 3, [n], generator: g);
        var cx = torch.randint(9, size - 9, [n, 1, 1], generator: g).to(ScalarType.Float32);
        var cy = torch.randint(9, size - 9, [n, 1, 1], generator: g).to(ScalarType.Float32);
        var r = torch.randint(4, 8, [n, 1, 1], generator: g).to(ScalarType.Float32);
        var coords = torch.arange(size, dtype: ScalarType.Float32);
        var y = coords.view(1, size, 1); var x = coords.view(1, 1, size);
        var dx = x - cx; var dy = y - cy;
        var circle = dx * dx + dy * dy <= r * r;
        var square = (dx.abs() <= r) & (dy.abs() <= r);
        var triangle = (dy >= -r) & (dy <= r) & (dx.abs() * 2 <= dy + r);
        var l = labels.view(n, 1, 1);
        var mask = torch.where(l == 0, circle, torch.where(l == 1, square, triangle));
        var images = (mask.to(ScalarType.Float32) * 255).to(ScalarType.Byte).unsqueeze(1);
        return (images.MoveToOuterDisposeScope(), labels.MoveToOuterDisposeScope());
    }

    static bool Same(Tensor a, Tensor b) => a.dtype == b.dtype && a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    static DomainClassifierConfig SmallConfig => new() { Channels = 1, ImageSize = 28, ClassNames = ["circle", "square", "triangle"], Widths = [16, 32, 64], FeatureDim = 64 };

    [Fact]
    public void FidOfASetAgainstItselfIsZero()
    {
        using var g = new Generator(5);
        using var act = torch.randn([300, 32], generator: g) * 3 + 1;
        using var stats = FeatureStatistics.FromActivations(act);
        Assert.True(Math.Abs(FrechetDistance.Compute(stats, stats)) < 1e-6);
        // and a different set is not at distance zero
        using var other = FeatureStatistics.FromActivations(act * 1.2);
        Assert.True(FrechetDistance.Compute(stats, other) > 0.1);
    }

    [Fact]
    public void FidMatchesClosedFormForDiagonalGaussians()
    {
        // d² = ‖μ1−μ2‖² + Σ (σ1 − σ2)² for diagonal covariances σ².
        var mu1 = torch.tensor(new double[] { 0, 1, 2 }); var mu2 = torch.tensor(new double[] { 1, 1, 0 });
        var s1 = torch.diag(torch.tensor(new double[] { 1, 4, 9 })); var s2 = torch.diag(torch.tensor(new double[] { 4, 4, 0 }));
        double expected = 1 + 0 + 4 + (1 - 2) * (1 - 2) + 0 + 9;
        Assert.Equal(expected, FrechetDistance.Compute(mu1, s1, mu2, s2), 9);
    }

    [Fact]
    public void FidGrowsAsImagesAreNoisedMore()
    {
        torch.random.manual_seed(11);
        using var net = new DomainClassifier(SmallConfig); // random weights suffice as a feature map
        net.eval();
        var extractor = new ClassifierFeatureExtractor(net, "random");
        var (refImages, _) = Shapes(200, 1);
        var (images, _) = Shapes(200, 2);
        using var refFeatures = SampleEvaluator.Extract(extractor, new TensorSampleSource(refImages, null, "ref"), 100);
        using var refStats = FeatureStatistics.FromActivations(refFeatures.Features);
        double previous = -1;
        using var g = new Generator(3);
        using var noise = torch.randn(images.shape, generator: g);
        foreach (double level in new[] { 0.0, 20, 60, 120 })
        {
            using var scope = torch.NewDisposeScope();
            var noised = (images.to(ScalarType.Float32) + noise * level).clamp(0, 255).round().to(ScalarType.Byte);
            using var f = SampleEvaluator.Extract(extractor, new TensorSampleSource(noised, null, "noised"), 100);
            using var s = FeatureStatistics.FromActivations(f.Features);
            double fid = FrechetDistance.Compute(s, refStats);
            Assert.True(fid > previous, $"FID {fid} at noise {level} is not above {previous}");
            previous = fid;
        }
    }

    [Fact]
    public void NpzRoundTripKeepsDtypesShapesAndValues()
    {
        string dir = RepoPaths.NewTempDir("npz");
        var arrays = new Dictionary<string, Tensor>
        {
            ["mu"] = torch.tensor(new double[] { 1.5, -2.25, 1e-300 }),
            ["f32"] = torch.arange(24, dtype: ScalarType.Float32).reshape(2, 3, 4) / 7,
            ["arr_0"] = torch.randint(0, 256, [2, 5, 4, 3], dtype: ScalarType.Byte),
            ["labels"] = torch.tensor(new long[] { 3, -1, long.MaxValue }),
            ["scalar"] = torch.tensor(2.0),
        };
        foreach (bool compress in new[] { false, true })
        {
            string path = Path.Combine(dir, $"a{compress}.npz");
            Npz.Write(path, arrays, compress);
            var back = Npz.Read(path);
            Assert.Equal(arrays.Keys.Order(), back.Keys.Order());
            foreach (var (k, v) in arrays)
            {
                Assert.Equal(v.dtype, back[k].dtype);
                Assert.Equal(v.shape, back[k].shape);
                Assert.True(Same(v, back[k]), k);
            }
        }
    }

    [Fact]
    public void NpyHeaderIsNumpyVersion1AlignedTo64Bytes()
    {
        using var ms = new MemoryStream();
        Npy.Write(ms, torch.zeros(64, 64, dtype: ScalarType.Float64));
        var bytes = ms.ToArray();
        int headerLen = bytes[8] | bytes[9] << 8;
        Assert.Equal(0, (10 + headerLen) % 64);
        string header = System.Text.Encoding.Latin1.GetString(bytes, 10, headerLen);
        Assert.StartsWith("{'descr': '<f8', 'fortran_order': False, 'shape': (64, 64), }", header);
        Assert.EndsWith("\n", header);
        Assert.Equal(10 + headerLen + 64 * 64 * 8, bytes.Length);
    }

    [Fact]
    public void CompressedNpzMadeWithDeflateAndFortranOrderIsRead()
    {
        string dir = RepoPaths.NewTempDir("npz-deflate");
        string path = Path.Combine(dir, "c.npz");
        using (var zip = ZipFile.Open(path, ZipArchiveMode.Create))
        {
            using (var s = zip.CreateEntry("sigma.npy", CompressionLevel.SmallestSize).Open())
                Npy.Write(s, torch.arange(6, dtype: ScalarType.Float64).reshape(2, 3));
            // A Fortran-order float32 (2, 3) array holding [[0, 1, 2], [3, 4, 5]]: stored column by column.
            using (var s = zip.CreateEntry("fortran.npy", CompressionLevel.Optimal).Open())
            {
                string dict = "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }";
                string header = dict + new string(' ', 128 - 10 - dict.Length - 1) + "\n";
                s.Write([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0, (byte)header.Length, 0]);
                s.Write(System.Text.Encoding.Latin1.GetBytes(header));
                foreach (float v in new float[] { 0, 3, 1, 4, 2, 5 }) s.Write(BitConverter.GetBytes(v));
            }
        }
        Assert.True(zip_entries_are_deflated(path));
        var back = Npz.Read(path);
        Assert.True(Same(back["sigma"], torch.arange(6, dtype: ScalarType.Float64).reshape(2, 3)));
        Assert.True(Same(back["fortran"], torch.arange(6, dtype: ScalarType.Float32).reshape(2, 3)));

        static bool zip_entries_are_deflated(string p)
        {
            using var z = ZipFile.OpenRead(p);
            return z.Entries.All(e => e.CompressedLength != e.Length);
        }
    }

    [Fact]
    public void NpzErrorsNameTheProblem()
    {
        string dir = RepoPaths.NewTempDir("npz-bad");
        string notZip = Path.Combine(dir, "x.npz");
        File.WriteAllText(notZip, "hello");
        Assert.Contains("not a valid .npz", Assert.Throws<LdmException>(() => Npz.Read(notZip)).Message);
        string stats = Path.Combine(dir, "s.npz");
        Npz.Write(stats, new Dictionary<string, Tensor> { ["mu"] = torch.zeros(3, dtype: ScalarType.Float64) });
        Assert.Contains("'sigma'", Assert.Throws<LdmException>(() => FeatureStatistics.Load(stats)).Message);
    }

    [Fact]
    public void StatisticsFileRoundTripsInPytorchFidFormat()
    {
        string path = Path.Combine(RepoPaths.NewTempDir("stats"), "ref.npz");
        using var g = new Generator(9);
        using var s = FeatureStatistics.FromActivations(torch.randn([50, 8], generator: g));
        s.Save(path);
        Assert.Equal(new[] { "mu", "sigma" }, Npz.Names(path).Order());
        using var back = FeatureStatistics.Load(path);
        Assert.True(Same(back.Mu, s.Mu) && Same(back.Sigma, s.Sigma));
        Assert.Equal(ScalarType.Float64, Npz.Read(path)["sigma"].dtype);
    }

    [Fact]
    public void PrecisionAndRecallAreOneForIdenticalSetsAndFallForDisjointOnes()
    {
        using var g = new Generator(4);
        using var a = torch.randn([200, 16], generator: g);
        var (p, r) = PrecisionRecall.Compute(a, a.clone());
        Assert.Equal(1.0, p); Assert.Equal(1.0, r);
        using var far = torch.randn([150, 16], generator: g) + 50;
        var (p2, r2) = PrecisionRecall.Compute(a, far, rowBlock: 64);
        Assert.Equal(0.0, p2); Assert.Equal(0.0, r2);
        // a collapsed generator (one mode): high precision, low recall
        using var collapsed = a.narrow(0, 0, 10).repeat(5, 1) + 0.01 * torch.randn([50, 16], generator: g);
        var (p3, r3) = PrecisionRecall.Compute(a, collapsed);
        Assert.True(p3 > 0.9 && r3 < 0.5, $"precision {p3}, recall {r3}");
    }

    [Fact]
    public void InceptionScoreIsOneForUniformLogitsAndTheClassCountForConfidentDiverseOnes()
    {
        var (m, s) = InceptionScore.Compute(torch.zeros(100, 1008));
        Assert.Equal(1.0, m, 12); Assert.Equal(0.0, s, 12);
        // 10 classes, each sample confidently one class, all classes equally often in every split → IS = 10.
        var logits = torch.eye(10).repeat(10, 1) * 100;
        var (m2, _) = InceptionScore.Compute(logits, splits: 10);
        Assert.Equal(10.0, m2, 6);
        Assert.Throws<LdmException>(() => InceptionScore.Compute(torch.zeros(5, 10), splits: 10));
    }

    [Fact]
    public void ClassifierTrainsOnShapesFarAboveChanceAndReloadsIdentically()
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var (train, trainLabels) = Shapes(1500, 21);
        var (test, testLabels) = Shapes(300, 22);
        using var model = DomainClassifierTrainer.Create(SmallConfig, seed: 1);
        var losses = DomainClassifierTrainer.Train(model, train, trainLabels, new ClassifierTrainingOptions { Epochs = 3, BatchSize = 64, Seed = 1 });
        double acc = DomainClassifierTrainer.Accuracy(model, test, testLabels);
        Assert.True(acc > 0.85, $"test accuracy {acc} (chance 0.33), losses {string.Join(", ", losses)}");
        Assert.True(losses[^1] < losses[0]);
        Assert.True(sw.Elapsed.TotalSeconds < 60, $"took {sw.Elapsed.TotalSeconds:F0} s");

        string path = Path.Combine(RepoPaths.NewTempDir("clf"), "clf.safetensors");
        model.Save(path);
        using var back = DomainClassifier.Load(path);
        Assert.Equal(SmallConfig.ClassNames, back.Config.ClassNames);
        using var noGrad = torch.no_grad();
        var x = test.narrow(0, 0, 8);
        Assert.True(model.forward(x).allclose(back.forward(x), 0, 0));

        // The evaluator: classifier FID of test vs train shapes is small, sample accuracy uses the labels.
        var extractor = new ClassifierFeatureExtractor(back, path);
        using var result = SampleEvaluator.Evaluate(extractor, new TensorSampleSource(test, testLabels, "test"),
            EvaluationReference.FromImages(new TensorSampleSource(train, trainLabels, "train")), new EvaluationOptions { BatchSize = 250 });
        var report = result.Report;
        Assert.Contains("classifier:", report.FeatureNetwork);
        Assert.Equal(acc, report.Metrics["sample_accuracy"], 9);
        Assert.True(report.Metrics["precision"] > 0.8 && report.Metrics["recall"] > 0.8);
        Assert.False(report.Metrics.ContainsKey("inception_score_mean"));
        string json = Path.Combine(Path.GetDirectoryName(path)!, "report.json");
        report.Save(json);
        Assert.Equal(report.Metrics["fid"], EvaluationReport.Load(json).Metrics["fid"]);
    }

    [Fact]
    public void MissingInceptionWeightsSayWhereToGetThem()
    {
        var e = Assert.Throws<LdmException>(() => FidInceptionV3.Load("/nonexistent/pt_inception-2015-12-05-6726825d.pth"));
        Assert.Contains(FidInceptionV3.WeightsUrl, e.Message);
        Assert.Contains("/nonexistent/", e.Message);
    }

    [Fact]
    public void TorchvisionKeysMapOntoTheBlocks()
    {
        Assert.Equal("blocks.0.0.conv.weight", FidInceptionV3.ToModuleKey("Conv2d_1a_3x3.conv.weight"));
        Assert.Equal("blocks.2.0.branch5x5_1.conv.weight", FidInceptionV3.ToModuleKey("Mixed_5b.branch5x5_1.conv.weight"));
        Assert.Equal("blocks.3.2.branch_pool.bn.running_var", FidInceptionV3.ToModuleKey("Mixed_7c.branch_pool.bn.running_var"));
        Assert.Equal("fc.weight", FidInceptionV3.ToModuleKey("fc.weight"));
        Assert.Null(FidInceptionV3.ToModuleKey("Mixed_9z.conv.weight"));
        using var model = new FidInceptionV3(withLogits: true);
        var keys = model.state_dict().Keys.ToHashSet();
        Assert.Contains("blocks.2.7.branch7x7dbl_5.bn.num_batches_tracked", keys);
        Assert.Contains("fc.bias", keys);
    }

    [Fact]
    public void NpzSamplesInAdmFormatAreRead()
    {
        string path = Path.Combine(RepoPaths.NewTempDir("samples"), "samples.npz");
        var (images, labels) = Shapes(7, 3);
        Npz.Write(path, new Dictionary<string, Tensor> { ["arr_0"] = images.permute(0, 2, 3, 1).contiguous(), ["arr_1"] = labels });
        var source = new NpzSampleSource(path);
        var batches = source.Batches(3).ToList();
        Assert.Equal(new long[] { 3, 3, 1 }, batches.Select(b => b.Images.shape[0]));
        Assert.True(Same(torch.cat(batches.Select(b => b.Images).ToList(), 0), images));
        Assert.True(Same(torch.cat(batches.Select(b => b.Labels!).ToList(), 0), labels));
    }

    /// <summary>A tiny pixel-space denoiser (1×28×28, the three shape classes) with random weights, saved as a checkpoint.</summary>
    static string TinyDenoiserCheckpoint(string dir, string space = "pixel")
    {
        var config = new TransformerConfig
        {
            InputSize = 28, PatchSize = 7, InChannels = 1, HiddenSize = 16, Depth = 1, NumHeads = 2, MlpRatio = 2.0,
            ClassDropoutProb = 0.1, NumClasses = 3, LearnSigma = true, Block = BlockType.InContext,
        };
        torch.random.manual_seed(3);
        using var model = new DiffusionTransformer(config);
        string path = Path.Combine(dir, $"tiny-{space}.safetensors");
        DenoiserCheckpoint.Save(path, model, new DenoiserInfo(config, new DiffusionConfig(), space == "pixel" ? DataSpace.Pixel : DataSpace.Latent, ["circle", "square", "triangle"]));
        return path;
    }

    [Fact]
    public void CheckpointSamplesAreTheSamplersOwnCycledOverTheClassesAndEvaluated()
    {
        string dir = RepoPaths.NewTempDir("ckpt-eval");
        string ckpt = TinyDenoiserCheckpoint(dir);
        var options = new SamplingOptions { Steps = 3, GuidanceScale = 2.0, Seed = 5, BatchSize = 4 };
        using var pipe = DiffusionPipeline.Load(ckpt);
        var source = new PipelineSampleSource(pipe, 7, options, [0, 1, 2]);
        Assert.Equal([0, 1, 2, 0, 1, 2, 0], source.Labels);
        int stepCalls = 0;
        source.OnProgress = _ => stepCalls++;

        // Pieces of 3 out of model batches of 4: 3, 1, 3; values equal the sampler's all-at-once output.
        var batches = source.Batches(3).ToList();
        Assert.Equal(new long[] { 3, 1, 3 }, batches.Select(b => b.Images.shape[0]));
        Assert.Equal(2 * 3, stepCalls);
        using (var generated = pipe.Generate(source.Labels!, options))
        using (var direct = SampleBatch.FromSigned(generated.Images))
        {
            Assert.True(Same(torch.cat(batches.Select(b => b.Images).ToList(), 0), direct.Images));
            Assert.Equal(new long[] { 0, 1, 2, 0, 1, 2, 0 }, torch.cat(batches.Select(b => b.Labels!).ToList(), 0).data<long>().ToArray());
        }
        foreach (var b in batches) b.Dispose();
        Assert.Equal(3, source.Batches(3, limit: 3).Sum(b => { using (b) return b.Images.shape[0]; }));

        // Through the evaluator with (untrained) classifier features: the report fields, not the quality.
        using var classifier = DomainClassifierTrainer.Create(SmallConfig, seed: 2);
        var extractor = new ClassifierFeatureExtractor(classifier, "random-classifier");
        var (reference, referenceLabels) = Shapes(20, 9);
        using var result = SampleEvaluator.Evaluate(extractor, source, EvaluationReference.FromImages(new TensorSampleSource(reference, referenceLabels, "shapes")),
            new EvaluationOptions { BatchSize = 5 });
        var report = result.Report;
        Assert.Equal(7, report.SampleCount);
        Assert.Equal(20, report.ReferenceCount);
        Assert.Contains("ddim, 3 steps, guidance 2, seed 5, float32", report.Samples);
        Assert.Contains("classifier:random-classifier", report.FeatureNetwork);
        Assert.True(double.IsFinite(report.Metrics["fid"]) && report.Metrics["fid"] >= 0);
        Assert.InRange(report.Metrics["sample_accuracy"], 0.0, 1.0);
        Assert.True(report.Metrics.ContainsKey("precision") && report.Metrics.ContainsKey("recall"));
    }

    [Fact]
    public void LatentCheckpointsNeedAnAutoencoderAndUnguidableOnesSayGuidanceOne()
    {
        string dir = RepoPaths.NewTempDir("ckpt-latent");
        string latent = TinyDenoiserCheckpoint(dir, "latent");
        var e = Assert.Throws<LdmException>(() => DiffusionPipeline.Load(latent));
        Assert.Contains("autoencoder", e.Message);
        // Loaded without its autoencoder, a latent model returns latents, which are no images to evaluate.
        using (var latents = DiffusionPipeline.Load(latent, decode: false))
        {
            Assert.False(latents.ReturnsImages);
            Assert.Throws<LdmException>(() => new PipelineSampleSource(latents, 2, new SamplingOptions { Steps = 2 }));
            using var raw = latents.Generate([0, 1], new SamplingOptions { Steps = 2 });
            Assert.True(raw.IsLatent);
            Assert.Throws<LdmException>(() => raw.Save(dir));
        }

        var (model, info) = DenoiserCheckpoint.Load(TinyDenoiserCheckpoint(dir));
        using (model)
        {
            var noDropout = info with { Backbone = info.Transformer with { ClassDropoutProb = 0 } };
            using var unguidable = DiffusionPipeline.FromModels(model, noDropout);
            var g = Assert.Throws<LdmOptionException>(() => new PipelineSampleSource(unguidable, 2, new SamplingOptions { GuidanceScale = 3 }, [0]).Batches(2).ToList());
            Assert.Equal(("SamplingOptions", "GuidanceScale"), (g.Owner, g.Property));
            Assert.Contains("--guidance must be 1 for this model, got 3", g.MessageFor("--guidance"));
            using var guidable = DiffusionPipeline.FromModels(model, info);
            Assert.Throws<LdmException>(() => new PipelineSampleSource(guidable, 2, new SamplingOptions(), [5]));
        }
    }

    [Fact]
    public void EvaluateCommandSamplesAModelAndRecordsHowInTheReport()
    {
        string dir = RepoPaths.NewTempDir("cli-eval-model");
        string ckpt = TinyDenoiserCheckpoint(dir);
        string clf = Path.Combine(dir, "clf.safetensors");
        using (var classifier = DomainClassifierTrainer.Create(SmallConfig, seed: 4)) classifier.Save(clf);
        var (reference, referenceLabels) = Shapes(12, 8);
        string refNpz = Path.Combine(dir, "ref.npz");
        Npz.Write(refNpz, new Dictionary<string, Tensor> { ["arr_0"] = reference.permute(0, 2, 3, 1).contiguous(), ["arr_1"] = referenceLabels });
        string json = Path.Combine(dir, "report.json");
        var root = new System.CommandLine.RootCommand { Cli.Commands.EvaluateCommand.Create() };
        int code = Cli.CliRunner.Run(root, ["evaluate", "--model", ckpt, "--num", "6", "--classes", "1,2", "--steps", "2", "--guidance", "1.5",
            "--sampler", "ddpm", "--seed", "3", "--batch-size", "4", "--features", $"classifier:{clf}", "--reference", refNpz, "--out", json]);
        Assert.Equal(0, code);
        var report = EvaluationReport.Load(json);
        Assert.Equal(ckpt, report.Model);
        Assert.Equal("ddpm", report.Sampler);
        Assert.Equal(2, report.Steps);
        Assert.Equal(1.5, report.Guidance);
        Assert.Equal(3, report.Seed);
        // --dtype auto (the default) records what it resolved to on this machine.
        Assert.Equal(Diagnostics.ComputePrecision.Auto().Dtype == ScalarType.BFloat16 ? "bf16" : "float32", report.Dtype);
        Assert.Equal(6, report.SampleCount);
        Assert.StartsWith($"classifier:{clf}", report.FeatureNetwork);
        Assert.Contains("sample_accuracy", report.Metrics.Keys);

        // Exactly one of --samples and --model; a latent-space checkpoint names the missing autoencoder.
        Assert.Equal(1, Cli.CliRunner.Run(root, ["evaluate", "--samples", refNpz, "--model", ckpt, "--reference", refNpz, "--features", $"classifier:{clf}", "--out", json]));
        Assert.Equal(1, Cli.CliRunner.Run(root, ["evaluate", "--model", TinyDenoiserCheckpoint(dir, "latent"), "--reference", refNpz, "--features", $"classifier:{clf}", "--out", json]));
    }
}
