using LatentDiffusion.Denoisers;
using LatentDiffusion.Diffusion;
using LatentDiffusion.Text;

namespace LatentDiffusion.Server;

/// <summary>What the generate page shows of a model (JSON of <c>GET /api/models</c>).</summary>
public sealed record ModelDescription(
    string Id, string File, string? Condition, string? Space, int? ImageSize, IReadOnlyList<string>? ClassNames,
    IReadOnlyList<string>? Vocabulary, int? MaxTokens, bool CanGenerateUnconditionally, RecommendedSettings? Recommended, string? Error)
{
    /// <summary>The description of a catalog entry (an unreadable file keeps only its error).</summary>
    public static ModelDescription Of(ModelEntry entry)
    {
        if (entry.Info is not { } info)
            return new(entry.Id, Path.GetFileName(entry.Path), null, null, null, null, null, null, false, null, entry.Error);
        bool text = info.Condition == ConditionKind.Text;
        var rec = info.SamplingOrDefault;
        return new(entry.Id, Path.GetFileName(entry.Path), text ? "text" : "class", info.IsPixelSpace ? "pixel" : "latent",
            info.IsPixelSpace ? info.Backbone.InputSize : null,
            text ? null : info.ClassNames,
            // A word vocabulary is the set of words a prompt may use; an open (BPE) vocabulary has none to list.
            (info.Tokenizer as WordVocabulary)?.Tokens.Where(t => t != WordVocabulary.PadToken).ToList(),
            info.Backbone.Text?.MaxTokens,
            info.Backbone.HasUnconditionalInput,
            new RecommendedSettings(Samplers.Name(rec.Sampler), rec.Steps, rec.GuidanceScale),
            null);
    }
}

/// <summary>A model's recommended sampling settings, by the command line's names.</summary>
public sealed record RecommendedSettings(string Sampler, int Steps, double Guidance);
