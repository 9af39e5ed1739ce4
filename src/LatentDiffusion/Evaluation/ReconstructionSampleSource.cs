using LatentDiffusion.Autoencoders;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Evaluation;

/// <summary>
/// The images of another source passed through an autoencoder, decode(encode(x).mode()), with their labels: what the
/// first stage alone loses. Its distance to the images it came from bounds how close any latent model using this
/// autoencoder can get to the data, so <see cref="SampleEvaluator"/> reports it beside the samples' distance.
/// Also sums the squared pixel error of what it gave (<see cref="SquaredErrorSum"/>, <see cref="ValueCount"/>) for PSNR.
/// </summary>
public sealed class ReconstructionSampleSource(ISampleSource images, AutoencoderKL autoencoder, int batchSize = 64) : ISampleSource
{
    /// <inheritdoc/>
    public string Description => $"{images.Description} reconstructed by the autoencoder";
    /// <inheritdoc/>
    public long? Count => images.Count;
    /// <inheritdoc/>
    public int ShardAlignment => images.ShardAlignment;

    /// <summary>Sum over every pixel value given so far of (reconstruction − original)², on the [0, 1] scale of the uint8 images.</summary>
    public double SquaredErrorSum { get; private set; }
    /// <summary>Pixel values (N·C·H·W) given so far.</summary>
    public long ValueCount { get; private set; }

    /// <summary>PSNR (dB) of everything given so far, on the [0, 1] scale.</summary>
    public static double Psnr(double squaredErrorSum, long valueCount) =>
        10 * Math.Log10(1.0 / Math.Max(squaredErrorSum / Math.Max(valueCount, 1), 1e-12));

    /// <inheritdoc/>
    public IEnumerable<SampleBatch> Batches(int batchSize, long? limit = null) => Reconstructed(images.Batches(batchSize, limit));

    /// <inheritdoc/>
    public IEnumerable<SampleBatch> Batches(int batchSize, Distributed.Shard share) => Reconstructed(images.Batches(batchSize, share));

    IEnumerable<SampleBatch> Reconstructed(IEnumerable<SampleBatch> source)
    {
        autoencoder.eval();
        int channels = autoencoder.Config.InChannels;
        foreach (var batch in source)
        {
            using (batch)
            {
                Tensor reconstructed;
                using (var scope = torch.NewDisposeScope())
                using (torch.no_grad())
                {
                    var signed = ToChannels(batch.Images.to(ScalarType.Float32).div(127.5).sub(1.0), channels);
                    var parts = new List<Tensor>();
                    for (long i = 0; i < signed.shape[0]; i += batchSize)
                        parts.Add(autoencoder.forward(signed.narrow(0, i, Math.Min(batchSize, signed.shape[0] - i))).to(ScalarType.Float32).cpu());
                    var rec = ToChannels(torch.cat(parts, 0), (int)batch.Images.shape[1]);
                    // Quantised as the decoder's samples are (SampleBatch.FromSigned), so both sides meet the features as PNG pixels.
                    reconstructed = rec.mul(127.5).add(128.0).clamp(0.0, 255.0).floor().to(ScalarType.Byte).MoveToOuterDisposeScope();
                    var diff = reconstructed.to(ScalarType.Float64).sub(batch.Images.to(ScalarType.Float64)).div(255.0);
                    SquaredErrorSum += diff.square().sum().item<double>();
                    ValueCount += batch.Images.NumberOfElements;
                }
                yield return new SampleBatch(reconstructed, batch.Labels?.clone());
            }
        }
    }

    /// <summary><paramref name="x"/> with <paramref name="channels"/> channels (gray and RGB convert into each other).</summary>
    static Tensor ToChannels(Tensor x, int channels) => IO.ImageChannels.Convert(x, channels)
        ?? throw new LdmException($"the autoencoder takes {channels}-channel images but the reference has {x.shape[1]} channels; compare it with images of its own kind.");
}
