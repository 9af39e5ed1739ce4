using LatentDiffusion.Autoencoders;
using LatentDiffusion.Data;
using LatentDiffusion.Evaluation;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests;

/// <summary>The first stage measured alone: the reference images through the autoencoder against the reference.</summary>
public sealed class ReconstructionDistanceTests
{
    static ClassifierFeatureExtractor Features() => new(DomainClassifierTrainer.Create(new DomainClassifierConfig
    {
        Channels = 3, ImageSize = 32, ClassNames = ShapesDataset.ClassNames.ToArray(), Widths = [16, 32, 32], FeatureDim = 64,
    }, seed: 1), "random classifier");

    [Fact]
    public void ReconstructionsAreTheQuantisedAutoencoderOutputWithTheirLabels()
    {
        using var threads = new SingleTorchThread();
        using var data = ShapesDataset.Generate(10, 3, text: false);
        using var ae = new AutoencoderKL(AutoencoderConfig.F4Rgb32Small);
        var source = new ReconstructionSampleSource(new DatasetSampleSource(data), ae, batchSize: 4);
        var batches = source.Batches(6).ToList();
        Assert.Equal([6L, 4L], batches.Select(b => b.Images.shape[0]));

        using var _ = torch.no_grad();
        using var signed = data.Images.to(ScalarType.Float32).div(127.5).sub(1.0);
        using var expected = ae.forward(signed).mul(127.5).add(128.0).clamp(0.0, 255.0).floor().to(ScalarType.Byte);
        using var got = torch.cat(batches.Select(b => b.Images).ToList(), 0);
        Assert.True(got.eq(expected).all().item<bool>(), "the reconstructions are not decode(encode(x).mode()) quantised as samples are");
        using var labels = torch.cat(batches.Select(b => b.Labels!).ToList(), 0);
        Assert.True(labels.eq(data.Labels).all().item<bool>());

        using var err = got.to(ScalarType.Float64).sub(data.Images.to(ScalarType.Float64)).div(255.0);
        double mse = err.square().mean().item<double>();
        Assert.Equal(10 * Math.Log10(1 / mse), ReconstructionSampleSource.Psnr(source.SquaredErrorSum, source.ValueCount), 6);
        foreach (var b in batches) b.Dispose();
    }

    [Fact]
    public void ATrainedAutoencoderIsCloserToTheDataThanAnUntrainedOne()
    {
        using var threads = new SingleTorchThread();
        using var data = ShapesDataset.Generate(64, 11, text: false);
        using var features = Features();
        using var trained = AutoencoderKL.Load(Path.Combine(RepoPaths.Root, "models", "shapes-autoencoder.safetensors"));
        using var untrained = new AutoencoderKL(trained.Config);

        EvaluationReport Measure(AutoencoderKL ae)
        {
            var samples = new DatasetSampleSource(data);
            using var result = SampleEvaluator.Evaluate(features, samples, EvaluationReference.FromImages(new DatasetSampleSource(data)),
                new EvaluationOptions { PrecisionRecall = false, ReconstructionAutoencoder = ae, BatchSize = 50 });
            return result.Report;
        }
        var good = Measure(trained).Metrics;
        var bad = Measure(untrained).Metrics;
        // The samples here are the reference itself: their FID is 0, the reconstructions' is not.
        Assert.True(good["fid"] < 1e-3, $"fid of the reference against itself {good["fid"]}");
        // Identical images would give the PSNR of a zero error (120 dB here).
        Assert.True(good["reconstruction_psnr"] is > 30 and < 60, $"shipped shapes autoencoder PSNR {good["reconstruction_psnr"]:F1} dB");
        Assert.True(bad["reconstruction_psnr"] < 15, $"untrained autoencoder PSNR {bad["reconstruction_psnr"]:F1} dB");
        Assert.True(good["reconstruction_fid"] * 5 < bad["reconstruction_fid"], $"trained {good["reconstruction_fid"]} vs untrained {bad["reconstruction_fid"]}");
        Assert.True(good["reconstruction_accuracy"] is >= 0 and <= 1);
    }

    [Fact]
    public void WithoutAnAutoencoderOrWithStatisticsNoReconstructionIsReported()
    {
        using var threads = new SingleTorchThread();
        using var data = ShapesDataset.Generate(40, 5, text: false);
        using var features = Features();
        using var result = SampleEvaluator.Evaluate(features, new DatasetSampleSource(data), EvaluationReference.FromImages(new DatasetSampleSource(data)),
            new EvaluationOptions { PrecisionRecall = false });
        Assert.DoesNotContain("reconstruction_fid", result.Report.Metrics.Keys);

        using var ae = new AutoencoderKL(AutoencoderConfig.F4Rgb32Small);
        using var stats = FeatureStatistics.FromActivations(result.Reference!.Features);
        using var viaStats = SampleEvaluator.Evaluate(features, new DatasetSampleSource(data), EvaluationReference.FromStatistics(stats, "stats"),
            new EvaluationOptions { PrecisionRecall = false, ReconstructionAutoencoder = ae });
        Assert.DoesNotContain("reconstruction_fid", viaStats.Report.Metrics.Keys);
    }
}
