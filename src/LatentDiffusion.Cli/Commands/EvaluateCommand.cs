using System.CommandLine;
using System.Globalization;
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
/// Sample sets: a folder of images, an .npz of samples (arr_0 uint8 NHWC, arr_1 labels), a data set name, or samples
/// generated here from a denoiser checkpoint (--model).
/// </summary>
public static class EvaluateCommand
{
    public static Command Create()
    {
        var samples = new Option<string?>("--samples") { Description = "generated images: a folder, an .npz (arr_0 uint8 NHWC, optional arr_1 labels), or fashion-mnist:train|test / shapes:<seed> (or use --model)" };
        var model = new Option<string?>("--model", "-m") { Description = "denoiser checkpoint to sample from (instead of --samples; latent-space ones need --autoencoder)" };
        var numSamples = new Option<int>("--num-samples", "-n") { Description = "with --model: how many samples to generate", DefaultValueFactory = _ => 10000 };
        var classes = new Option<string?>("--classes", "-c") { Description = "with --model: class ids to sample, cycled (3, 0,5,7, 0-9 or all; default all)" };
        var autoencoder = new Option<string?>("--autoencoder", "-a") { Description = "with --model of a latent-space denoiser: the autoencoder checkpoint that decodes its latents" };
        var dtype = new Option<string>("--dtype") { Description = "with --model: float32, bf16 or f16 for the denoiser", DefaultValueFactory = _ => "float32" };
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
        var sampler = new Option<string?>("--sampler") { Description = "with --model: ddim, ddpm or dpm++2m (default: the model's recommended); else recorded in the report as the sampler that made the samples" };
        var steps = new Option<int?>("--steps") { Description = "with --model: sampling steps (default: the model's recommended); else recorded in the report" };
        var guidance = new Option<double?>("--guidance", "-g") { Description = "with --model: classifier-free guidance scale (1 = none; default: the model's recommended); else recorded in the report" };
        var threads = new Option<int>("--threads") { Description = "CPU threads (0: all)", DefaultValueFactory = _ => 0 };

        var command = new Command("evaluate", "Measure generated images: FID, precision/recall, Inception Score, sample accuracy.")
        { samples, model, numSamples, classes, autoencoder, dtype, reference, features, inceptionWeights, fashionDir, output, batch, maxSamples, noPr, k, seed, exportNpz, saveStats, sampler, steps, guidance, threads };
        command.SetAction(r =>
        {
            if (r.GetValue(threads) is > 0 and var t) torch.set_num_threads(t);
            using var extractor = CreateExtractor(r.GetValue(features)!, r.GetValue(inceptionWeights));
            string fmDir = r.GetValue(fashionDir)!;
            var disposables = new List<IDisposable>();
            try
            {
                string? modelPath = r.GetValue(model), samplesSpec = r.GetValue(samples);
                if ((modelPath is null) == (samplesSpec is null))
                    throw new LdmException("give either --samples (images to evaluate) or --model (a denoiser checkpoint to sample from), not both or neither.");
                PipelineSampleSource? generated = null;
                ISampleSource sampleSource;
                if (modelPath is not null)
                {
                    generated = OpenModel(CliParsing.ExistingFile(modelPath, "--model"), r.GetValue(classes), r.GetValue(numSamples),
                        CliParsing.Dtype(r.GetValue(dtype)), d => d with
                        {
                            Sampler = r.GetValue(sampler) is { } name ? Samplers.Parse(name) : d.Sampler,
                            Steps = r.GetValue(steps) ?? d.Steps,
                            GuidanceScale = r.GetValue(guidance) ?? d.GuidanceScale,
                            Seed = r.GetValue(seed),
                            BatchSize = r.GetValue(batch),
                        }, extractor, r.GetValue(autoencoder), disposables);
                    sampleSource = generated;
                }
                else if (r.GetValue(autoencoder) is not null)
                    throw new LdmException("--autoencoder decodes the latents of a --model; --samples are images already, so drop --autoencoder.");
                else sampleSource = OpenSource(samplesSpec!, extractor.Channels, fmDir, disposables);
                var referenceSpec = r.GetValue(reference)!;
                var refSet = OpenReference(referenceSpec, extractor.Channels, fmDir, disposables);
                var options = new EvaluationOptions
                {
                    BatchSize = r.GetValue(batch), MaxSamples = r.GetValue(maxSamples), PrecisionRecall = !r.GetValue(noPr),
                    NearestK = r.GetValue(k), Seed = r.GetValue(seed), KeepSampleImages = r.GetValue(exportNpz) is not null,
                };
                EvaluationResult? result = null;
                if (generated is not null)
                    result = EvaluateGenerated(extractor, generated, refSet, options);
                else
                    AnsiConsole.Status().Start($"evaluating with {extractor.Name}", ctx =>
                        result = SampleEvaluator.Evaluate(extractor, sampleSource, refSet, options,
                            (what, n) => ctx.Status($"{what}: {n} images through {extractor.Name}")));
                using (result)
                {
                    var report = generated is null
                        ? result!.Report with { Sampler = r.GetValue(sampler), Steps = r.GetValue(steps), Guidance = r.GetValue(guidance) }
                        : result!.Report with
                        {
                            Model = modelPath,
                            Sampler = Samplers.Name(generated.Options.Sampler),
                            Steps = generated.Options.Steps,
                            Guidance = generated.Options.GuidanceScale,
                            Dtype = CliParsing.DtypeName(generated.Pipeline.Dtype),
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
    static PipelineSampleSource OpenModel(string path, string? classes, int count, torch.ScalarType dtype, Func<SamplingOptions, SamplingOptions> settings,
        IFeatureExtractor extractor, string? autoencoderPath, List<IDisposable> disposables)
    {
        var info = DenoiserCheckpoint.PeekInfo(path);
        if (!info.IsPixelSpace && autoencoderPath is null && info.AutoencoderBeside(path) is null)
            throw new LdmException($"'{path}' is a latent-space denoiser and names no autoencoder beside it; pass the autoencoder that decodes its latents with --autoencoder <ae.safetensors>.");
        if (autoencoderPath is not null) CliParsing.ExistingFile(autoencoderPath, "--autoencoder");
        if (extractor.ClassNames.Count > 0 && info.ClassNames.Count > 0 && !extractor.ClassNames.SequenceEqual(info.ClassNames))
            throw new LdmException($"the classifier's classes ({string.Join(", ", extractor.ClassNames.Take(4))}, ...) are not the model's ({string.Join(", ", info.ClassNames.Take(4))}, ...), so sample accuracy would compare different labels; use a classifier trained on the model's data set.");
        var ids = CliParsing.ClassIds(classes, info.Backbone.NumClasses);
        var pipeline = DiffusionPipeline.Load(path, dtype: dtype, autoencoderPath: autoencoderPath);
        disposables.Add(pipeline);
        if (extractor.Channels != pipeline.ImageChannels && extractor is ClassifierFeatureExtractor)
            Console.Error.WriteLine($"note: the model makes {pipeline.ImageChannels}-channel images, the classifier takes {extractor.Channels}; they are converted.");
        return new PipelineSampleSource(pipeline, count, settings(pipeline.DefaultOptions), ids);
    }

    /// <summary>Samples with a progress bar over all reverse steps, then measures.</summary>
    static EvaluationResult EvaluateGenerated(IFeatureExtractor extractor, PipelineSampleSource source, EvaluationReference reference, EvaluationOptions options)
    {
        long count = Math.Min(source.Count!.Value, options.MaxSamples ?? long.MaxValue);
        int perBatch = source.Options.BatchSize, steps = source.Options.Steps;
        double total = (count + perBatch - 1) / perBatch * (double)steps;
        string what = $"({Samplers.Name(source.Options.Sampler)}, {steps} steps, guidance {source.Options.GuidanceScale:G})";
        return ConsoleProgress.Run($"sampling {count} images", total, report =>
        {
            source.OnProgress = p => report(p.ImagesDone / perBatch * p.StepsPerBatch + p.Step, what);
            return SampleEvaluator.Evaluate(extractor, source, reference, options,
                (stage, n) => { if (stage == "reference") report(total, $"reference: {n} images through the feature network"); });
        });
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
