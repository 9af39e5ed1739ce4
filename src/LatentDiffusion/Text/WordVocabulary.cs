using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace LatentDiffusion.Text;

/// <summary>
/// A closed word-level vocabulary built from the training captions: captions are lower-cased and split into words
/// (runs of letters and digits, an inner apostrophe allowed: "don't"); whitespace and every other character only
/// separate words. Id 0 is <c>&lt;pad&gt;</c>; the words follow in ordinal order, so the same captions always give the
/// same ids whatever their order. A word outside the vocabulary is a user error that lists every unknown word
/// and the words the model knows. Stored as JSON in the checkpoint (metadata key <see cref="MetadataKey"/>).
/// </summary>
public sealed partial class WordVocabulary : ITextTokenizer
{
    /// <summary>The checkpoint metadata key holding the vocabulary JSON.</summary>
    public const string MetadataKey = "ldm.vocabulary";
    /// <summary>The format tag of the vocabulary JSON.</summary>
    public const string Format = "ldm-word-vocabulary/1";
    /// <summary>The token of id 0.</summary>
    public const string PadToken = "<pad>";

    readonly string[] _words;
    readonly Dictionary<string, int> _ids;

    /// <inheritdoc/>
    public string Kind => "word";
    /// <summary>Number of tokens, <c>&lt;pad&gt;</c> included.</summary>
    public int VocabSize => _words.Length;
    /// <summary>Always 0 (<see cref="PadToken"/>).</summary>
    public int PadId => 0;
    /// <summary>The tokens by id (id 0 is <see cref="PadToken"/>).</summary>
    public IReadOnlyList<string> Tokens => _words;

    WordVocabulary(string[] words)
    {
        _words = words;
        _ids = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < words.Length; i++)
            if (!_ids.TryAdd(words[i], i))
                throw new LdmException($"the vocabulary lists '{words[i]}' twice; re-create the checkpoint.");
    }

    [GeneratedRegex(@"[\p{L}\p{N}]+(?:['’][\p{L}\p{N}]+)*")]
    private static partial Regex WordRegex();

    /// <summary>The words of a caption as the vocabulary sees them: lower-cased, punctuation dropped.</summary>
    public static string[] SplitWords(string caption) =>
        WordRegex().Matches(caption.ToLowerInvariant()).Select(m => m.Value.Replace('’', '\'')).ToArray();

    /// <summary>The vocabulary of every word in <paramref name="captions"/> (null captions are skipped).</summary>
    public static WordVocabulary Build(IEnumerable<string?> captions)
    {
        var words = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var c in captions)
            if (c != null) words.UnionWith(SplitWords(c));
        if (words.Count == 0)
            throw new LdmException("the training captions hold no words, so no vocabulary can be built; give the images captions (the \"text\" field of metadata.jsonl).");
        return new WordVocabulary([PadToken, .. words]);
    }

    /// <summary>The ids of the caption's words; <see cref="LdmException"/> listing every word outside the vocabulary.</summary>
    public int[] Tokenize(string caption)
    {
        var words = SplitWords(caption);
        var ids = new int[words.Length];
        List<string>? unknown = null;
        for (int i = 0; i < words.Length; i++)
        {
            if (_ids.TryGetValue(words[i], out int id) && id != PadId) ids[i] = id;
            else if (!(unknown ??= []).Contains(words[i])) unknown.Add(words[i]);
        }
        if (unknown != null)
        {
            const int shown = 40;
            var known = _words.Skip(1).Take(shown);
            throw new LdmException(
                $"the prompt '{caption}' uses {unknown.Count} word{(unknown.Count == 1 ? "" : "s")} this model never saw in training: " +
                $"{string.Join(", ", unknown.Select(w => $"'{w}'"))}; use only words of its vocabulary ({VocabSize - 1} words: " +
                $"{string.Join(" ", known)}{(VocabSize - 1 > shown ? " ..." : "")}).");
        }
        return ids;
    }

    /// <summary>The words of <paramref name="ids"/>, padding skipped.</summary>
    public string Decode(IEnumerable<long> ids) =>
        string.Join(" ", ids.Where(id => id != PadId).Select(id => id >= 0 && id < _words.Length ? _words[id] : "<?>"));

    /// <summary>The vocabulary as JSON (<c>{"format": ..., "tokens": [...]}</c>), as stored under <see cref="MetadataKey"/>.</summary>
    public string ToJson() => new JsonObject
    {
        ["format"] = Format,
        ["tokens"] = new JsonArray(_words.Select(w => (JsonNode)JsonValue.Create(w)).ToArray()),
    }.ToJsonString();

    /// <summary>Reads a vocabulary written by <see cref="ToJson"/>; <paramref name="source"/> names the file for errors.</summary>
    public static WordVocabulary FromJson(string json, string source)
    {
        JsonObject? obj;
        try { obj = JsonNode.Parse(json) as JsonObject; }
        catch (JsonException e) { throw new LdmException($"the vocabulary in '{source}' is not valid JSON ({e.Message}); re-create the checkpoint.", e); }
        if (obj == null || (string?)obj["format"] != Format || obj["tokens"] is not JsonArray tokens)
            throw new LdmException($"the vocabulary in '{source}' is not a {Format} object; re-create the checkpoint.");
        var words = tokens.Select(t => (string?)t ?? "").ToArray();
        if (words.Length < 2 || words[0] != PadToken)
            throw new LdmException($"the vocabulary in '{source}' must start with {PadToken} and hold at least one word; re-create the checkpoint.");
        return new WordVocabulary(words);
    }
}
