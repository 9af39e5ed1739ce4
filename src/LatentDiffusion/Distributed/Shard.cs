namespace LatentDiffusion.Distributed;

/// <summary>
/// One rank's contiguous share of N items (the rows of a global batch, the images of a sample set): rank r of R gets
/// items [N·r/R, N·(r+1)/R), so the shares are in rank order and concatenating them gives the whole set back.
/// </summary>
/// <param name="Start">The first item of the share.</param>
/// <param name="Count">How many items the share holds (may be 0).</param>
public readonly record struct Shard(long Start, long Count)
{
    /// <summary>One past the last item of the share.</summary>
    public long End => Start + Count;

    /// <summary>Rank <paramref name="rank"/>'s share of <paramref name="total"/> items among <paramref name="size"/> ranks.</summary>
    public static Shard Of(long total, int rank, int size)
    {
        if (size < 1 || rank < 0 || rank >= size) throw new LdmException($"rank {rank} of {size} ranks does not exist; ranks run from 0 to size − 1.");
        long start = total * rank / size, end = total * (rank + 1) / size;
        return new Shard(start, end - start);
    }

    /// <summary>
    /// A share made of whole batches of <paramref name="batchSize"/> (the last batch may be short): for work whose
    /// random draws run batch by batch (sampling), so a rank reproduces exactly the batches a single process makes.
    /// </summary>
    public static Shard OfBatches(long total, int batchSize, int rank, int size)
    {
        if (batchSize < 1) throw new LdmException($"the batch size must be at least 1, got {batchSize}.");
        long batches = (total + batchSize - 1) / batchSize;
        var share = Of(batches, rank, size);
        long start = Math.Min(total, share.Start * batchSize), end = Math.Min(total, share.End * batchSize);
        return new Shard(start, end - start);
    }
}
