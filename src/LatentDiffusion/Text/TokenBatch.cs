using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Text;

/// <summary>Captions of a batch as model input: int64 ids (N, L) and a bool mask (N, L), true = real token.</summary>
/// <param name="ids">The token ids; owned by the batch.</param>
/// <param name="mask">The mask; owned by the batch.</param>
public sealed class TokenBatch(Tensor ids, Tensor mask) : IDisposable
{
    /// <summary>int64 (N, L): token ids, the pad id at padded positions.</summary>
    public Tensor Ids { get; } = ids;
    /// <summary>bool (N, L): true at real tokens; an all-false row is the empty caption.</summary>
    public Tensor Mask { get; } = mask;
    /// <summary>Number of captions (N).</summary>
    public long Count => Ids.shape[0];

    /// <summary>Tokenizes <paramref name="captions"/> (null or empty = the empty caption) to <paramref name="maxLength"/> positions,
    /// as tensors on <paramref name="device"/> (null = torch's default device, the cpu unless set).</summary>
    public static TokenBatch Encode(ITextTokenizer tokenizer, IReadOnlyList<string?> captions, int maxLength, Device? device = null)
    {
        var ids = new long[captions.Count * maxLength];
        var mask = new bool[captions.Count * maxLength];
        for (int i = 0; i < captions.Count; i++)
        {
            var (rowIds, rowMask) = tokenizer.Encode(captions[i], maxLength);
            rowIds.CopyTo(ids, i * maxLength);
            rowMask.CopyTo(mask, i * maxLength);
        }
        long[] shape = [captions.Count, maxLength];
        return new TokenBatch(torch.tensor(ids, shape, ScalarType.Int64, device), torch.tensor(mask, shape, ScalarType.Bool, device));
    }

    /// <summary><paramref name="count"/> empty captions: the unconditional input of classifier-free guidance.</summary>
    public static TokenBatch Empty(long count, int maxLength, int padId, Device? device = null) =>
        new(torch.full(count, maxLength, padId, ScalarType.Int64, device), torch.zeros(count, maxLength, ScalarType.Bool, device));

    /// <summary>This batch followed by <paramref name="other"/> (e.g. [prompts; empty captions] for guidance).</summary>
    public TokenBatch Concat(TokenBatch other) => new(torch.cat([Ids, other.Ids], 0), torch.cat([Mask, other.Mask], 0));

    /// <summary>The most tokens any of <paramref name="captions"/> has (at least 1).</summary>
    public static int MaxTokenCount(ITextTokenizer tokenizer, IEnumerable<string?> captions) =>
        Math.Max(1, captions.Where(c => !string.IsNullOrWhiteSpace(c)).Distinct().Select(c => tokenizer.Tokenize(c!).Length).DefaultIfEmpty(0).Max());

    /// <summary>Frees the ids and mask.</summary>
    public void Dispose()
    {
        Ids.Dispose();
        Mask.Dispose();
    }
}
