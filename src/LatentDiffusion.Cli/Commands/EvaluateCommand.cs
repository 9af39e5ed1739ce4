using System.CommandLine;
using System.Globalization;
using LatentDiffusion.Cli.Grammar;
using LatentDiffusion.Data;
using LatentDiffusion.Diagnostics;
using LatentDiffusion.Evaluation;
using LatentDiffusion.Denoisers;
using LatentDiffusion.Diffusion;
using LatentDiffusion.IO;
using LatentDiffusion.Pipelines;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Cli.Commands;

/// <summary>
/// `ldm evaluate`: FID (Inception or classifier features), precision/recall, Inception Score and sample accuracy of a
/// set of generated images against reference images or statistics; writes a JSON report and prints a table.
/// Sample sets and references are data-set specs (<see cref="DataSetSpec"/>: a folder of images, an .npz of samples or
/// statistics, a built-in set), or samples are generated here from a denoiser checkpoint (--model).
/// </summary>
public static class EvaluateCommand
{
    public static Command Create()
    {
        var samples = new Option<string?>("--samples") { Description = $"Images to evaluate (or use --model): {DataSetSpec.Syntax} of samples (arr_0 uint8 NHWC, optional arr_1 labels)." };
        var model = CommonOptions.Model("Denoiser checkpoint to sample from (instead of --samples; latent-space ones find their autoencoder beside them or take --autoencoder).", required: false);
        var num = CommonOptions.Num("10000; with --model");
        var numSamples = CommonOptions.Deprecated<int>("--num-samples");
        var classes = new Option<string?>("--classes", "-c") { Description = "with --model: class ids to sample, cycled (3, 0,5,7, 0-9 or all; default all)" };
        var autoencoder = new Option<string?>("--autoencoder", "-a") { Description = "with --model of a latent-space denoiser: the autoencoder checkpoint that decodes its latents; with --samples: an autoencoder whose reconstruction distance to the reference to report beside the samples'" };
        var noReconstruction = new Option<bool>("--no-reconstruction") { Description = "skip the autoencoder's reconstruction distance (reported by default for latent models: the reference images through the autoencoder against the reference)" };
        var dtype = CommonOptions.ComputeDtype("With --model: compute dtype of the denoiser", ScalarType.Float32, ScalarType.BFloat16, ScalarType.Float16);
        var reference = new Option<string>("--reference") { Description = $"Reference images or statistics: {DataSetSpec.Syntax} (of samples, or of statistics mu, sigma).", Required = true };
        var features = new Option<string>("--features") { Description = "feature network: inception, or classifier:<path to a train-classifier checkpoint>", DefaultValueFactory = _ => "inception" };
        var inceptionWeights = new Option<string?>("--inception-weights") { Description = $"path of {FidInceptionV3.WeightsFileName} (default: ${FidInceptionV3.WeightsEnvVar})" };
        var output = CommonOptions.Out("JSON report to write.", "evaluation.json");
        var batch = new Option<int>("--batch-size") { DefaultValueFactory = _ => 100 };
        var maxSamples = new Option<long?>("--max-samples") { Description = "use at most this many samples and reference images" };
        var noPr = new Option<bool>("--no-precision-recall") { Description = "skip precision/recall (k-NN over all features)" };
        var k = new Option<int>("--k") { Description = "neighbours for precision/recall", DefaultValueFactory = _ => 3 };
        var seed = CommonOptions.Seed("noise of --model samples, generated shapes, precision/recall subsets");
        var exportNpz = new Option<string?>("--export-npz") { Description = "also write the samples as .npz (arr_0 uint8 NHWC, arr_1 labels): the ADM evaluation-suite format" };
        var saveStats = new Option<string?>("--save-reference-stats") { Description = "write the reference's feature statistics (pytorch-fid .npz: mu, sigma)" };
        var sampler = CommonOptions.Sampler(null, "with --model the sampler to use (default: the model's recommended), else recorded in the report as the one that made the samples");
        var steps = new Option<int?>("--steps") { Description = "with --model: sampling steps (default: the model's recommended); else recorded in the report" };
        var guidance = new Option<double?>("--guidance", "-g") { Description = "with --model: classifier-free guidance scale (1 = none; default: the model's recommended); else recorded in the report" };
        var runtime = CommonOptions.Runtime();

        var command = new Command("evaluate", "Measure generated images: FID, precision/recall, Inception Score, sample accuracy.")
        { samples, model, num, numSamples, classes, autoencoder, noReconstruction, dtype, reference, features, inceptionWeights, output, batch, maxSamples, noPr, k, seed, exportNpz, saveStats, sampler, steps, guidance };
        foreach (var o in runtime.All) command.Options.Add(o);
        command.SetAction(r =>
        {
            var device = runtime.Apply(r);
            var samplerKind = SamplerNames.ParseOptional(r.GetValue(sampler));
            var computeDtype = DtypeNames.ParseCompute(r.GetValue(dtype), ScalarType.Float32, ScalarType.BFloat16, ScalarType.Float16);
            int count = CommonOptions.ReadDeprecated(r, numSamples, "--num {}", out int oldCount) ? oldCount : r.GetValue(num) ?? 10000;
            long seedValue = r.GetValue(seed);
            var samplesSpec = r.GetValue(samples) is { } samplesText
                ? DataSetSpec.Parse(samplesText, "--samples").Require("--samples", "images (a built-in set, an image folder or an .npz of samples)",
                    DataSetKind.Shapes, DataSetKind.ShapesText, DataSetKind.FashionMnist, DataSetKind.ImageFolder, DataSetKind.CaptionedFolder, DataSetKind.SamplesNpz)
                : null;
            var referenceSpec = DataSetSpec.Parse(r.GetValue(reference), "--reference").Require("--reference", "images or statistics (a built-in set, an image folder or an .npz)",
                DataSetKind.Shapes, DataSetKind.ShapesText, DataSetKind.FashionMnist, DataSetKind.ImageFolder, DataSetKind.CaptionedFolder, DataSetKind.SamplesNpz, DataSetKind.StatisticsNpz);
            using var extractor = CreateExtractor(r.GetValue(features)!, r.GetValue(inceptionWeights));
            var disposables = new List<IDisposable>();
            try
            {
                string? modelPath = r.GetValue(model);
                if ((modelPath is null) == (samplesSpec is null))
                    throw new LdmException("give either --samples (images to evaluate) or --model (a denoiser checkpoint to sample from), not both or neither.");
                PipelineSampleSource? generated = null;
                ISampleSource sampleSource;
                if (modelPath is not null)
                {
                    generated = OpenModel(CliParsing.ExistingFile(modelPath, "--model"), r.GetValue(classes), count, device, computeDtype, recommended => SamplingOptions.From(recommended.With(samplerKind, r.GetValue(steps), r.GetValue(guidance))) with
                        {
                            Seed = seedValue,
                            BatchSize = r.GetValue(batch),
                        }, extractor, r.GetValue(autoencoder), disposables);
                    sampleSource = generated;
                }
                else sampleSource = OpenSource(samplesSpec!, extractor.Channels, seedValue, disposables);
                var refSet = OpenReference(referenceSpec, extractor.Channels, seedValue, disposables);
                Autoencoders.AutoencoderKL? firstStage = null;
                if (!r.GetValue(noReconstruction))
                {
                    if (generated is not null) firstStage = generated.Pipeline.Autoencoder;
                    else if (r.GetValue(autoencoder) is { } aePath)
                    {
                        firstStage = Autoencoders.AutoencoderKL.Load(CliParsing.ExistingFile(aePath, "--autoencoder"));
                        disposables.Add(firstStage);
                    }
                    if (firstStage is not null && refSet.Images is null)
                    {
                        Console.Error.WriteLine("note: the reference is a statistics file, so the autoencoder's reconstruction distance is not measured; give reference images to have it.");
                        firstStage = null;
                    }
                }
                else if (samplesSpec is not null && r.GetValue(autoencoder) is not null)
                    throw new LdmException("--autoencoder with --samples asks for its reconstruction distance, which --no-reconstruction turns off; drop one of them.");
                var options = new EvaluationOptions
                {
                    BatchSize = r.GetValue(batch), MaxSamples = r.GetValue(maxSamples), PrecisionRecall = !r.GetValue(noPr),
                    NearestK = r.GetValue(k), Seed = r.GetValue(seed), KeepSampleImages = r.GetValue(exportNpz) is not null,
                    ReconstructionAutoencoder = firstStage,
                };
                // Under mpiexec each rank samples and measures its share of the images; every rank gets all the
                // features, and rank 0 alone writes the report.
                var world = Ranks.World;
                EvaluationResult? result = null;
                if (generated is not null)
                    result = EvaluateGenerated(extractor, generated, refSet, options, world);
                else
                    AnsiConsole.Status().Start($"evaluating with {extractor.Name}", ctx =>
                        result = SampleEvaluator.Evaluate(extractor, sampleSource, refSet, options,
                            (what, n) => ctx.Status($"{what}: {n} images through {extractor.Name}"), world));
                using (result)
                {
                    if (!world.IsMain) return 0;
                    var report = generated is null
                        ? result!.Report with { Sampler = samplerKind is { } given ? SamplerNames.Of(given) : null, Steps = r.GetValue(steps), Guidance = r.GetValue(guidance) }
                        : result!.Report with
                        {
                            Model = modelPath,
                            Sampler = Samplers.Name(generated.Options.Sampler),
                            Steps = generated.Options.Steps,
                            Guidance = generated.Options.GuidanceScale,
                            Dtype = DtypeNames.Of(generated.Pipeline.Dtype),
                        };
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

    /// <summary>A denoiser checkpoint as a sample source (latent models decoded by their autoencoder: <paramref name="autoencoderPath"/>, else the one
    /// beside the model); its classes must be the classifier's when sample accuracy is measured with one.</summary>
    static PipelineSampleSource OpenModel(string path, string? classes, int count, Device device, ComputeDtype dtype, Func<RecommendedSampling, SamplingOptions> settings,
        IFeatureExtractor extractor, string? autoencoderPath, List<IDisposable> disposables)
    {
        var info = DenoiserCheckpoint.PeekInfo(path);
        if (!info.IsPixelSpace && autoencoderPath is null && info.AutoencoderBeside(path) is null)
            throw new LdmException($"'{path}' is a latent-space denoiser and names no autoencoder beside it; pass the autoencoder that decodes its latents with --autoencoder <ae.safetensors>.");
        if (autoencoderPath is not null) CliParsing.ExistingFile(autoencoderPath, "--autoencoder");
        if (extractor.ClassNames.Count > 0 && info.ClassNames.Count > 0 && !extractor.ClassNames.SequenceEqual(info.ClassNames))
            throw new LdmException($"the classifier's classes ({string.Join(", ", extractor.ClassNames.Take(4))}, ...) are not the model's ({string.Join(", ", info.ClassNames.Take(4))}, ...), so sample accuracy would compare different labels; use a classifier trained on the model's data set.");
        var ids = CliParsing.ClassIds(classes, info.Backbone.NumClasses);
        var pipeline = DiffusionPipeline.Load(path, device, dtype, autoencoderPath);
        disposables.Add(pipeline);
        if (extractor.Channels != pipeline.ImageChannels && extractor is ClassifierFeatureExtractor)
            Console.Error.WriteLine($"note: the model makes {pipeline.ImageChannels}-channel images, the classifier takes {extractor.Channels}; they are converted.");
        return new PipelineSampleSource(pipeline, count, settings(pipeline.Info.SamplingOrDefault), ids);
    }

    /// <summary>Samples with a progress bar over all reverse steps, then measures.</summary>
    static EvaluationResult EvaluateGenerated(IFeatureExtractor extractor, PipelineSampleSource source, EvaluationReference reference, EvaluationOptions options,
        Distributed.IProcessGroup world)
    {
        long count = Math.Min(source.Count!.Value, options.MaxSamples ?? long.MaxValue);
        // The bar follows this rank's share (rank 0's is what is shown).
        if (world.Size > 1) count = source.Pipeline.ShareOf((int)count, world.Rank, world.Size, source.Options).Count;
        int perBatch = source.Options.BatchSize, steps = source.Options.Steps;
        double total = (count + perBatch - 1) / perBatch * (double)steps;
        string what = $"({SamplerNames.Of(source.Options.Sampler)}, {steps} steps, guidance {source.Options.GuidanceScale:G})";
        return ConsoleProgress.Run($"sampling {count} images", total, report =>
        {
            source.OnProgress = p => report(p.ImagesDone / perBatch * p.StepsPerBatch + p.Step, what);
            return SampleEvaluator.Evaluate(extractor, source, reference, options,
                (stage, n) => { if (stage != "samples") report(total, $"{stage}: {n} images through the feature network"); }, world);
        });
    }

    /// <summary>The feature network of a <c>--features</c> value: inception (weights from <paramref name="inceptionWeights"/> or the environment) or classifier:PATH.</summary>
    internal static IFeatureExtractor CreateExtractor(string spec, string? inceptionWeights)
    {
        if (spec == "inception")
        {
            if (inceptionWeights is not null) CliParsing.ExistingFile(inceptionWeights, "--inception-weights");
            else if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable(FidInceptionV3.WeightsEnvVar)))
                throw new LdmException($"the FID Inception weights are not set; download {FidInceptionV3.WeightsUrl} and pass it with --inception-weights (or set {FidInceptionV3.WeightsEnvVar}), or use --features classifier:PATH.");
            return InceptionFeatureExtractor.Load(inceptionWeights);
        }
        if (spec.StartsWith("classifier:", StringComparison.Ordinal) && spec.Length > "classifier:".Length)
            return ClassifierFeatureExtractor.Load(CliParsing.ExistingFile(spec["classifier:".Length..], "--features classifier:"));
        throw new LdmException($"--features '{spec}' is not known; use inception or classifier:<path to a checkpoint from ldm train-classifier>.");
    }

    /// <summary>Images generated for a shapes spec without a count (as many as a quick FID needs).</summary>
    const int DefaultShapesCount = 2000;

    /// <summary>The samples a spec names: a built-in set, a folder or an .npz of samples.</summary>
    internal static ISampleSource OpenSource(DataSetSpec spec, int channels, long seed, List<IDisposable> owned)
    {
        switch (spec.Kind)
        {
            case DataSetKind.ImageFolder or DataSetKind.CaptionedFolder: return new ImageFolderSampleSource(spec.Path!, channels);
            case DataSetKind.SamplesNpz: return new NpzSampleSource(spec.Path!);
            default:
                // Built-in sets come as images of their own size; the folder arguments are unused for them.
                var ds = DataSetLoader.Load(spec, DefaultShapesCount, seed, 0, channels);
                owned.Add(ds);
                return new DatasetSampleSource(ds);
        }
    }

    static EvaluationReference OpenReference(DataSetSpec spec, int channels, long seed, List<IDisposable> owned)
    {
        if (spec.Kind == DataSetKind.StatisticsNpz)
        {
            var stats = FeatureStatistics.Load(spec.Path!);
            owned.Add(stats);
            return EvaluationReference.FromStatistics(stats, spec.Path!);
        }
        return EvaluationReference.FromImages(OpenSource(spec, channels, seed, owned));
    }

    static void PrintTable(EvaluationReport report)
    {
        var table = new Table().Title($"[bold]evaluation[/] ({Markup.Escape(report.FeatureNetwork)})");
        table.AddColumn("metric");
        table.AddColumn(new TableColumn("value").RightAligned());
        foreach (var (name, value) in report.Metrics)
        {
            string kind = report.FeatureNetwork.StartsWith("inception") ? "Inception" : "classifier features";
            string label = name switch
            {
                "fid" => $"FID ({kind})",
                "reconstruction_fid" => $"FID of the autoencoder's reconstructions ({kind})",
                "reconstruction_psnr" => "PSNR of the reconstructions (dB)",
                _ => name,
            };
            table.AddRow(Markup.Escape(label), value.ToString("G6", CultureInfo.InvariantCulture));
        }
        table.AddRow("samples", report.SampleCount.ToString(CultureInfo.InvariantCulture));
        if (report.ReferenceCount is { } rc) table.AddRow("reference images", rc.ToString(CultureInfo.InvariantCulture));
        AnsiConsole.Write(table);
    }
}
