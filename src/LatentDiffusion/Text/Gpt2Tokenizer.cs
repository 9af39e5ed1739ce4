using Microsoft.ML.Tokenizers;

namespace LatentDiffusion.Text;

/// <summary>
/// GPT-2's byte-level BPE (50,257 tokens) through Microsoft.ML.Tokenizers and its bundled gpt2 data: an open
/// vocabulary, every string encodes. Captions are used as written (GPT-2 is case-sensitive). Padding holds
/// <c>&lt;|endoftext|&gt;</c> (GPT-2 has no pad token; padded positions are masked anyway).
/// </summary>
public sealed class Gpt2Tokenizer : ITextTokenizer
{
    public const int GptVocabSize = 50257;
    public const int EndOfTextId = 50256;

    static readonly Lazy<TiktokenTokenizer> Bpe = new(() => TiktokenTokenizer.CreateForModel("gpt2"));

    public static Gpt2Tokenizer Instance { get; } = new();

    Gpt2Tokenizer() { }

    public string Kind => "gpt2";
    public int VocabSize => GptVocabSize;
    public int PadId => EndOfTextId;

    public int[] Tokenize(string caption) => Bpe.Value.EncodeToIds(caption).ToArray();

    /// <summary>The text of <paramref name="ids"/>.</summary>
    public string Decode(IEnumerable<int> ids) => Bpe.Value.Decode(ids);
}
