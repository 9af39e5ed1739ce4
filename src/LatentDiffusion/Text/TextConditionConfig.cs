using System.Text.Json.Serialization;
using static TorchSharp.torch;

namespace LatentDiffusion.Text;

/// <summary>
/// The text part of a text-conditioned Transformer's config (<c>"text": {...}</c> in its JSON; class models have none).
/// </summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed record TextConditionConfig
{
    /// <summary><c>word</c> (vocabulary of the training captions, stored in the checkpoint) or <c>gpt2</c> (BPE).</summary>
    [JsonPropertyName("tokenizer")] public string Tokenizer { get; init; } = "word";
    /// <summary>Rows of the token-embedding table (the tokenizer's vocabulary size).</summary>
    [JsonPropertyName("vocab_size")] public int VocabSize { get; init; }
    /// <summary>Token positions per caption (padded); the in-context sequence holds 1 + max_tokens extra tokens.</summary>
    [JsonPropertyName("max_tokens")] public int MaxTokens { get; init; } = 32;
    /// <summary>Probability of replacing a caption by the empty caption in training (classifier-free guidance).</summary>
    [JsonPropertyName("dropout_prob")] public double DropoutProb { get; init; } = 0.1;
    /// <summary>
    /// Self-attention layers the caption passes through on its own before it joins the denoiser (0: the token and
    /// position embeddings go in as they are). With layers, each word can take in the words of its phrase, so the
    /// denoiser receives "red" already tied to "circle" and "left", as LDM's BERT and U-ViT's CLIP give it.
    /// </summary>
    [JsonPropertyName("encoder_layers"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public int EncoderLayers { get; init; }

    /// <summary>Attention heads of the caption encoder's layers at width <paramref name="width"/>: one per 64 channels (at least one).</summary>
    public static int EncoderHeads(int width) => width % 64 == 0 ? width / 64 : 1;

    /// <summary>Most caption-encoder layers a config may ask for (BERT-large has 24; LDM's text encoder 32).</summary>
    public const int MaxEncoderLayers = 48;

    /// <summary>Checks the tokenizer name and the ranges; returns this config, or throws <see cref="LdmException"/> naming the bad field.</summary>
    public TextConditionConfig Validate()
    {
        TextTokenizers.Normalize(Tokenizer);
        if (VocabSize < 2)
            throw new LdmException($"transformer config: text.vocab_size {VocabSize} is too small; use the tokenizer's vocabulary size (pad + words).");
        if (MaxTokens < 1)
            throw new LdmException($"transformer config: text.max_tokens {MaxTokens} must be at least 1; use the longest caption's token count.");
        if (EncoderLayers < 0 || EncoderLayers > MaxEncoderLayers)
            throw new LdmException($"transformer config: text.encoder_layers {EncoderLayers} must be in 0..{MaxEncoderLayers}; 0 (no caption encoder) or 2 are usual here.");
        if (DropoutProb < 0 || DropoutProb >= 1 || double.IsNaN(DropoutProb))
            throw new LdmException($"transformer config: text.dropout_prob {DropoutProb} must be in [0, 1); 0.1 is usual.");
        return this;
    }

    /// <summary>
    /// The text conditioning of a new model trained on <paramref name="captions"/>: the tokenizer (a word vocabulary
    /// built from the captions, or GPT-2 BPE) and a config sized for it, with room for the longest caption.
    /// </summary>
    /// <param name="captions">The training captions (null or empty entries are skipped for the vocabulary).</param>
    /// <param name="tokenizer"><c>word</c> or <c>gpt2</c>.</param>
    /// <param name="maxTokens">Token positions per caption; null = the longest caption's count.</param>
    /// <param name="dropoutProb">Probability of the empty caption in training (classifier-free guidance).</param>
    /// <param name="encoderLayers">Self-attention layers of the caption encoder (0: embeddings only).</param>
    public static (TextConditionConfig Config, ITextTokenizer Tokenizer) ForCaptions(IReadOnlyList<string?> captions,
        string tokenizer = "word", int? maxTokens = null, double dropoutProb = 0.1, int encoderLayers = 0)
    {
        if (!captions.Any(c => !string.IsNullOrWhiteSpace(c)))
            throw new LdmException("there are no captions to build a text model from; give data with a caption per image.");
        var built = TextTokenizers.Build(tokenizer, captions);
        int longest = TokenBatch.MaxTokenCount(built, captions);
        int positions = maxTokens ?? longest;
        if (positions < longest)
            throw new LdmOptionException(nameof(TextConditionConfig), nameof(MaxTokens), positions, $"be at least {longest}",
                "the longest training caption has that many tokens; raise it or leave it out");
        if (encoderLayers < 0 || encoderLayers > MaxEncoderLayers)
            throw new LdmOptionException(nameof(TextConditionConfig), nameof(EncoderLayers), encoderLayers, $"be in 0..{MaxEncoderLayers}",
                "0 embeds the words alone; 2 is a small caption encoder");
        var config = new TextConditionConfig { Tokenizer = built.Kind, VocabSize = built.VocabSize, MaxTokens = positions, DropoutProb = dropoutProb, EncoderLayers = encoderLayers }.Validate();
        return (config, built);
    }

    /// <summary>
    /// Checks a batch of token ids (N, L) and its optional padding mask against this config before a model embeds
    /// them: 1 ≤ L ≤ max_tokens, integer ids inside the vocabulary, a mask of the ids' shape.
    /// </summary>
    public void CheckTokens(Tensor ids, Tensor? mask)
    {
        if (ids.dim() != 2 || ids.shape[1] < 1 || ids.shape[1] > MaxTokens)
            throw new LdmException($"token ids must be (N, L) with 1 <= L <= {MaxTokens}, got [{string.Join(",", ids.shape)}]; tokenize the captions to at most {MaxTokens} positions.");
        if (ids.is_floating_point() || ids.dtype == ScalarType.Bool)
            throw new LdmException("token ids must be integers, got a floating-point or bool tensor; pass an int64 tensor.");
        if (mask is not null && !mask.shape.SequenceEqual(ids.shape))
            throw new LdmException($"the text mask must have the shape of the ids [{string.Join(",", ids.shape)}], got [{string.Join(",", mask.shape)}]; pass one flag per token.");
        if (ids.NumberOfElements > 0)
        {
            long min = ids.min().item<long>(), max = ids.max().item<long>();
            if (min < 0 || max >= VocabSize)
                throw new LdmException($"token id {(min < 0 ? min : max)} is outside this model's vocabulary 0..{VocabSize - 1}; tokenize with the model's own tokenizer ({Tokenizer}).");
        }
    }
}
