namespace LatentDiffusion.Text;

/// <summary>
/// Turns a caption into token ids for a text-conditioned model. Every tokenizer has a pad id (the value padded
/// positions hold; they are masked out, so its embedding never matters). An empty caption has no tokens: it is the
/// unconditional input of classifier-free guidance (the model puts its learned null token there).
/// </summary>
public interface ITextTokenizer
{
    /// <summary><c>word</c> or <c>gpt2</c>, as stored in the model config.</summary>
    string Kind { get; }
    /// <summary>Rows of the model's token-embedding table.</summary>
    int VocabSize { get; }
    /// <summary>The id written at padded positions.</summary>
    int PadId { get; }

    /// <summary>The caption's token ids; <see cref="LdmException"/> when the caption cannot be encoded (unknown words).</summary>
    int[] Tokenize(string caption);

    /// <summary>
    /// The caption as <paramref name="maxLength"/> ids and a mask (true = real token, false = padding). A null or
    /// empty caption gives an all-false mask; a caption with more tokens than <paramref name="maxLength"/> is a user error.
    /// </summary>
    (long[] ids, bool[] mask) Encode(string? caption, int maxLength)
    {
        if (maxLength < 1) throw new ArgumentOutOfRangeException(nameof(maxLength), "at least one token position is needed");
        var tokens = string.IsNullOrWhiteSpace(caption) ? [] : Tokenize(caption);
        if (tokens.Length > maxLength)
            throw new LdmException($"the caption '{caption}' has {tokens.Length} tokens but this model reads at most {maxLength}; shorten the caption (or train with more token positions, TextConditionConfig.MaxTokens).");
        var ids = new long[maxLength];
        var mask = new bool[maxLength];
        for (int i = 0; i < maxLength; i++)
        {
            bool real = i < tokens.Length;
            ids[i] = real ? tokens[i] : PadId;
            mask[i] = real;
        }
        return (ids, mask);
    }
}
