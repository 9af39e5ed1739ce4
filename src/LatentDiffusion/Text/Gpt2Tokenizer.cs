using Microsoft.ML.Tokenizers;

namespace LatentDiffusion.Text;

/// <summary>
/// GPT-2's byte-level BPE (50,257 tokens) through Microsoft.ML.Tokenizers and its bundled gpt2 data: an open
/// vocabulary, every string encodes. Captions are used as written (GPT-2 is case-sensitive). Padding holds
/// <c>&lt;|endoftext|&gt;</c> (GPT-2 has no pad token; padded positions are masked anyway).
/// </summary>
public sealed class Gpt2Tokenizer : ITextTokenizer
{
    /// <summary>GPT-2's vocabulary size.</summary>
    public const int GptVocabSize = 50257;
    /// <summary>The id of <c>&lt;|endoftext|&gt;</c>, used as the pad id.</summary>
    public const int EndOfTextId = 50256;

    static readonly Lazy<TiktokenTokenizer> Bpe = new(() => TiktokenTokenizer.CreateForModel("gpt2"));

    /// <summary>The one instance (stateless; the BPE data loads on first use).</summary>
    public static Gpt2Tokenizer Instance { get; } = new();

    Gpt2Tokenizer() { }

    /// <inheritdoc/>
    public string Kind => "gpt2";
    /// <inheritdoc/>
    public int VocabSize => GptVocabSize;
    /// <inheritdoc/>
    public int PadId => EndOfTextId;

    /// <summary>The caption's BPE ids; every string encodes.</summary>
    public int[] Tokenize(string caption) => Bpe.Value.EncodeToIds(caption).ToArray();

    /// <summary>The text of <paramref name="ids"/>.</summary>
    public string Decode(IEnumerable<int> ids) => Bpe.Value.Decode(ids);
}
