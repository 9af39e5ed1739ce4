namespace LatentDiffusion.Text;

/// <summary>Creates the tokenizer a text model names in its config (<c>word</c> or <c>gpt2</c>).</summary>
public static class TextTokenizers
{
    /// <summary>The tokenizer kinds, in their canonical spelling.</summary>
    public static readonly string[] Kinds = ["word", "gpt2"];

    /// <summary>A tokenizer for training: <c>word</c> builds the vocabulary of <paramref name="captions"/>, <c>gpt2</c> needs none.</summary>
    public static ITextTokenizer Build(string kind, IEnumerable<string?> captions) => Normalize(kind) switch
    {
        "word" => WordVocabulary.Build(captions),
        _ => Gpt2Tokenizer.Instance,
    };

    /// <summary>The tokenizer of a saved model: <c>word</c> reads the stored vocabulary JSON (<paramref name="vocabularyJson"/>).</summary>
    public static ITextTokenizer Load(string kind, string? vocabularyJson, string source) => Normalize(kind) switch
    {
        "word" => WordVocabulary.FromJson(vocabularyJson
            ?? throw new LdmException($"'{source}' is a word-vocabulary text model without its vocabulary ({WordVocabulary.MetadataKey}); re-create the checkpoint."), source),
        _ => Gpt2Tokenizer.Instance,
    };

    /// <summary>The canonical kind for a spelling (<c>words</c> → <c>word</c>, <c>bpe</c> or <c>GPT-2</c> → <c>gpt2</c>);
    /// <see cref="LdmException"/> for an unknown one.</summary>
    public static string Normalize(string kind)
    {
        var k = kind.Trim().ToLowerInvariant().Replace("-", "");
        return k switch
        {
            "word" or "words" => "word",
            "gpt2" or "bpe" => "gpt2",
            _ => throw new LdmException($"text tokenizer '{kind}' is unknown; use word (a vocabulary of the training captions) or gpt2 (GPT-2 BPE)."),
        };
    }
}
