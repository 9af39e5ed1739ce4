using TorchSharp;

namespace LatentDiffusion.Training;

/// <summary>
/// The order in which a run visits its data: epoch e is a permutation drawn from a generator seeded by (seed, e),
/// and step s takes the next batch of positions. The order is a pure function of (seed, step), so a resumed run
/// continues exactly where it stopped without storing any generator state.
/// </summary>
internal sealed class DataOrder(long count, long seed)
{
    long _epoch = -1;
    long[] _perm = [];

    public long[] IndicesForStep(long step, int batchSize)
    {
        var result = new long[batchSize];
        for (int i = 0; i < batchSize; i++)
        {
            long position = step * batchSize + i;
            long epoch = position / count;
            if (epoch != _epoch) { _perm = Permutation(epoch); _epoch = epoch; }
            result[i] = _perm[position % count];
        }
        return result;
    }

    long[] Permutation(long epoch)
    {
        using var g = new torch.Generator(StepSeeds.Mix(seed, 0x5EED_0000 + epoch));
        using var p = torch.randperm(count, generator: g, device: torch.CPU);
        return p.data<long>().ToArray();
    }
}

/// <summary>
/// Seeds derived from a run seed and a step, so every step's random draws are reproducible on resume. Step s draws from
/// a generator seeded by <c>Mix(seed, s)</c>; draws that belong to no step use the negative streams below.
/// </summary>
internal static class StepSeeds
{
    /// <summary>Streams of draws outside the steps: model initialisation, the discriminator's, latent-scale measurement;
    /// <see cref="DropoutStream"/> is indexed by step (<see cref="Mix(long, long, long)"/>) for the global torch seed.</summary>
    public const long InitStream = -1, DiscriminatorInitStream = -2, LatentScaleStream = -3, DropoutStream = -4;

    /// <summary>A seed for position <paramref name="index"/> of stream <paramref name="stream"/>.</summary>
    public static ulong Mix(long seed, long stream, long index) => Mix((long)Mix(seed, stream), index);

    /// <summary>A well-mixed 64-bit seed from (seed, stream) (SplitMix64 finaliser).</summary>
    public static ulong Mix(long seed, long stream)
    {
        ulong z = unchecked((ulong)seed * 0x9E3779B97F4A7C15UL + (ulong)stream + 0x632BE59BD9B4E019UL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return (z ^ (z >> 31)) & 0x7FFF_FFFF_FFFF_FFFFUL;
    }
}
