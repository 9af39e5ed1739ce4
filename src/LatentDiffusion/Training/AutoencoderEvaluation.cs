using LatentDiffusion.Autoencoders;
using LatentDiffusion.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Training;

/// <summary>Reconstruction quality and latent statistics of an autoencoder on a data set.</summary>
public static class AutoencoderEvaluation
{
    /// <summary>Mean L1 error and PSNR (dB) of decode(encode(x).mode()) on the first <paramref name="count"/> images,
    /// both on the [0, 1] pixel scale (reconstructions clamped to it).</summary>
    public static (double l1, double psnr) Reconstruction(AutoencoderKL model, ImageDataset data, int count, int batchSize = 64)
    {
        using var _ = torch.no_grad();
        model.eval();
        long n = Math.Min(count, data.Count);
        double absSum = 0, sqSum = 0, values = 0;
        for (long start = 0; start < n; start += batchSize)
        {
            using var scope = torch.NewDisposeScope();
            var idx = Enumerable.Range(0, (int)Math.Min(batchSize, n - start)).Select(i => start + i).ToArray();
            using var batch = data.GetBatch(idx);
            var x = (batch.Images + 1) / 2;
            var rec = ((model.forward(batch.Images).to(ScalarType.Float32).cpu() + 1) / 2).clamp(0, 1);
            var diff = (rec - x).to(ScalarType.Float64);
            absSum += diff.abs().sum().item<double>();
            sqSum += diff.square().sum().item<double>();
            values += x.NumberOfElements;
        }
        double mse = sqSum / values;
        return (absSum / values, 10 * Math.Log10(1.0 / Math.Max(mse, 1e-12)));
    }

    /// <summary>1 / std of posterior samples z ~ q(z|x) over the first <paramref name="count"/> images.</summary>
    public static double MeasureLatentScale(AutoencoderKL model, ImageDataset data, int count, int batchSize, ulong seed)
    {
        using var _ = torch.no_grad();
        model.eval();
        long n = Math.Min(count, data.Count);
        var gen = new Generator(seed);
        double sum = 0, sq = 0, values = 0;
        for (long start = 0; start < n; start += batchSize)
        {
            using var scope = torch.NewDisposeScope();
            var idx = Enumerable.Range(0, (int)Math.Min(batchSize, n - start)).Select(i => start + i).ToArray();
            using var batch = data.GetBatch(idx);
            var z = model.Encode(batch.Images).Sample(gen).to(ScalarType.Float64);
            sum += z.sum().item<double>();
            sq += z.square().sum().item<double>();
            values += z.NumberOfElements;
        }
        double mean = sum / values, variance = Math.Max(sq / values - mean * mean, 0);
        double std = Math.Sqrt(variance * values / Math.Max(values - 1, 1));
        if (!(std > 0)) throw new LdmException("the latents have zero spread, so no latent scale can be measured; train the autoencoder longer or check the data.");
        return 1.0 / std;
    }
}
