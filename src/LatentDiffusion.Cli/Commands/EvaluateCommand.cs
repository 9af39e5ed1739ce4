using System.CommandLine;
using System.Globalization;
using LatentDiffusion.Data;
using LatentDiffusion.Evaluation;
using LatentDiffusion.IO;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Cli.Commands;

/// <summary>
/// `ldm evaluate`: FID (Inception or classifier features), precision/recall, Inception Score and sample accuracy of a
/// set of generated images against reference images or statistics; writes a JSON report and prints a table.
/// Sample sets: a folder of images, an .npz of samples (arr_0 uint8 NHWC, arr_1 labels), or a data set name.
/// </summary>
public static class EvaluateCommand
{
    public static Command Create()
    {
        var samples = new Option<string>("--samples") { Description = "generated images: a folder, an .npz (arr_0 uint8 NHWC, optional arr_1 labels), or fashion-mnist:train|test / shapes:<seed>", Required = true };
        var reference = new Option<string>("--reference") { Description = "reference: a folder, an .npz of statistics (mu, sigma) or of samples (arr_0), or fashion-mnist:train|test / shapes:<seed>", Required = true };
        var features = new Option<string>("--features") { Description = "feature network: inception, or classifier:<path to a train-classifier checkpoint>", DefaultValueFactory = _ => "inception" };
        var inceptionWeights = new Option<string?>("--inception-weights") { Description = $"path of {FidInceptionV3.WeightsFileName} (default: ${FidInceptionV3.WeightsEnvVar})" };
        var fashionDir = new Option<string>("--fashion-mnist-dir") { DefaultValueFactory = _ => FashionMnist.DefaultFolder };
        var output = new Option<string>("--out") { Description = "JSON report to write", DefaultValueFactory = _ => "evaluation.json" };
        var batch = new Option<int>("--batch-size") { DefaultValueFactory = _ => 100 };
        var maxSamples = new Option<long?>("--max-samples") { Description = "use at most this many samples and reference images" };
        var noPr = new Option<bool>("--no-precision-recall") { Description = "skip precision/recall (k-NN over all features)" };
        var k = new Option<int>("--k") { Description = "neighbours for precision/recall", DefaultValueFactory = _ => 3 };
        var seed = new Option<long>("--seed") { DefaultValueFactory = _ => 0 };
        var exportNpz = new Option<string?>("--export-npz") { Description = "also write the samples as .npz (arr_0 uint8 NHWC, arr_1 labels): the ADM evaluation-suite format" };
        var saveStats = new Option<string?>("--save-reference-stats") { Description = "write the reference's feature statistics (pytorch-fid .npz: mu, sigma)" };
        var sampler = new Option<string?>("--sampler") { Description = "recorded in the report: the sampler that made the samples" };
        var steps = new Option<int?>("--steps") { Description = "recorded in the report: sampling steps" };
        var guidance = new Option<double?>("--guidance") { Description = "recorded in the report: classifier-free guidance scale" };
        var threads = new Option<int>("--threads") { Description = "CPU threads (0: all)", DefaultValueFactory = _ => 0 };

        var command = new Command("evaluate", "Measure generated images: FID, precision/recall, Inception Score, sample accuracy.")
        { samples, reference, features, inceptionWeights, fashionDir, output, batch, maxSamples, noPr, k, seed, exportNpz, saveStats, sampler, steps, guidance, threads };
        command.SetAction(r =>
        {
            if (r.GetValue(threads) is > 0 and var t) torch.set_num_threads(t);
            using var extractor = CreateExtractor(r.GetValue(features)!, r.GetValue(inceptionWeights));
            string fmDir = r.GetValue(fashionDir)!;
            var disposables = new List<IDisposable>();
            try
            {
                var sampleSource = OpenSource(r.GetValue(samples)!, extractor.Channels, fmDir, disposables);
                var referenceSpec = r.GetValue(reference)!;
                var refSet = OpenReference(referenceSpec, extractor.Channels, fmDir, disposables);
                var options = new EvaluationOptions
                {
                    BatchSize = r.GetValue(batch), MaxSamples = r.GetValue(maxSamples), PrecisionRecall = !r.GetValue(noPr),
                    NearestK = r.GetValue(k), Seed = r.GetValue(seed), KeepSampleImages = r.GetValue(exportNpz) is not null,
                };
                EvaluationResult? result = null;
                AnsiConsole.Status().Start($"evaluating with {extractor.Name}", ctx =>
                    result = SampleEvaluator.Evaluate(extractor, sampleSource, refSet, options,
                        (what, n) => ctx.Status($"{what}: {n} images through {extractor.Name}")));
                using (result)
                {
                    var report = result!.Report with { Sampler = r.GetValue(sampler), Steps = r.GetValue(steps), Guidance = r.GetValue(guidance) };
                    string outPath = r.GetValue(output)!;
                    report.Save(outPath);
                    if (r.GetValue(exportNpz) is { } npzPath)
                    {
                        var arrays = new Dictionary<string, Tensor> { ["arr_0"] = result.Samples.Images!.permute(0, 2, 3, 1).contiguous() };
                        if (result.Samples.Labels is { } labels) arrays["arr_1"] = labels;
                        Npz.Write(npzPath, arrays);
                    }
                    if (r.GetValue(saveStats) is { } statsPath)
                    {
                        if (result.Reference is null) throw new LdmException("--save-reference-stats needs reference images, not a statistics file.");
                        using var stats = FeatureStatistics.FromActivations(result.Reference.Features);
                        stats.Save(statsPath);
                    }
                    PrintTable(report);
                    Console.WriteLine($"report: {outPath}");
                }
            }
            finally { foreach (var d in disposables) d.Dispose(); }
            return 0;
        });
        return command;
    }

    static IFeatureExtractor CreateExtractor(string spec, string? inceptionWeights)
    {
        if (spec == "inception") return InceptionFeatureExtractor.Load(inceptionWeights);
        if (spec.StartsWith("classifier:", StringComparison.Ordinal) && spec.Length > "classifier:".Length)
            return ClassifierFeatureExtractor.Load(spec["classifier:".Length..]);
        throw new LdmException($"--features '{spec}' is not known; use inception or classifier:<path to a checkpoint from ldm train-classifier>.");
    }

    /// <summary>A data set name, a folder or an .npz of samples.</summary>
    internal static ISampleSource OpenSource(string spec, int channels, string fashionDir, List<IDisposable> owned)
    {
        if (spec.StartsWith("fashion-mnist", StringComparison.Ordinal))
        {
            bool train = spec switch
            {
                "fashion-mnist" or "fashion-mnist:test" => false,
                "fashion-mnist:train" => true,
                _ => throw new LdmException($"'{spec}' is not a Fashion-MNIST split; use fashion-mnist:train or fashion-mnist:test."),
            };
            var ds = FashionMnist.Load(fashionDir, train);
            owned.Add(ds);
            return new DatasetSampleSource(ds);
        }
        if (spec.StartsWith("shapes:", StringComparison.Ordinal))
        {
            var parts = spec.Split(':');
            if (parts.Length is < 2 or > 3 || !int.TryParse(parts[1], out int seed))
                throw new LdmException($"'{spec}' is not a shapes set; use shapes:<seed> or shapes:<seed>:<count>.");
            int count = parts.Length == 3 && int.TryParse(parts[2], out int c) && c > 0 ? c : 2000;
            var ds = ShapesDataset.Generate(count, seed, text: false);
            owned.Add(ds);
            return new DatasetSampleSource(ds);
        }
        if (Directory.Exists(spec)) return new ImageFolderSampleSource(spec, channels);
        if (File.Exists(spec) && spec.EndsWith(".npz", StringComparison.OrdinalIgnoreCase)) return new NpzSampleSource(spec);
        throw new LdmException($"'{spec}' is neither a folder, an .npz file nor a data set name; pass a folder of images, an .npz, fashion-mnist:train|test or shapes:<seed>.");
    }

    static EvaluationReference OpenReference(string spec, int channels, string fashionDir, List<IDisposable> owned)
    {
        if (File.Exists(spec) && spec.EndsWith(".npz", StringComparison.OrdinalIgnoreCase) && Npz.Names(spec).Contains("mu"))
        {
            var stats = FeatureStatistics.Load(spec);
            owned.Add(stats);
            return EvaluationReference.FromStatistics(stats, spec);
        }
        return EvaluationReference.FromImages(OpenSource(spec, channels, fashionDir, owned));
    }

    static void PrintTable(EvaluationReport report)
    {
        var table = new Table().Title($"[bold]evaluation[/] ({Markup.Escape(report.FeatureNetwork)})");
        table.AddColumn("metric");
        table.AddColumn(new TableColumn("value").RightAligned());
        foreach (var (name, value) in report.Metrics)
        {
            string label = name == "fid" ? (report.FeatureNetwork.StartsWith("inception") ? "FID (Inception)" : "FID (classifier features)") : name;
            table.AddRow(Markup.Escape(label), value.ToString("G6", CultureInfo.InvariantCulture));
        }
        table.AddRow("samples", report.SampleCount.ToString(CultureInfo.InvariantCulture));
        if (report.ReferenceCount is { } rc) table.AddRow("reference images", rc.ToString(CultureInfo.InvariantCulture));
        AnsiConsole.Write(table);
    }
}
