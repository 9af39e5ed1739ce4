using System.Text.Json;
using System.Text.Json.Serialization;
using LatentDiffusion.IO;

namespace LatentDiffusion.Evaluation;

/// <summary>
/// The result of one evaluation, written as JSON. Every metric is tied to <see cref="FeatureNetwork"/>: "fid" on
/// classifier features is a different number from an Inception FID and is labelled as such.
/// </summary>
public sealed record EvaluationReport
{
    /// <summary>Version tag of the report format (<c>ldm-evaluation/1</c>).</summary>
    public string Format { get; init; } = "ldm-evaluation/1";
    /// <summary>The <see cref="IFeatureExtractor.Name"/> every metric was computed with.</summary>
    public required string FeatureNetwork { get; init; }
    /// <summary>fid, precision, recall, inception_score_mean/std, sample_accuracy, reference_accuracy (those computed).</summary>
    public required SortedDictionary<string, double> Metrics { get; init; }
    /// <summary>Number of samples evaluated.</summary>
    public long SampleCount { get; init; }
    /// <summary>Number of reference images used; null when the reference was precomputed statistics.</summary>
    public long? ReferenceCount { get; init; }
    /// <summary>What the samples were (the sample source's description).</summary>
    public string Samples { get; init; } = "";
    /// <summary>What the reference was (images or statistics file).</summary>
    public string Reference { get; init; } = "";
    /// <summary>The evaluation's seed (<see cref="EvaluationOptions.Seed"/>; <c>ldm evaluate</c> also seeds generated samples with it).</summary>
    public long Seed { get; init; }
    /// <summary>k of the k-NN precision/recall, when they were computed.</summary>
    public int? NearestK { get; init; }
    /// <summary>The denoiser checkpoint the samples were generated from (ldm evaluate --model).</summary>
    public string? Model { get; init; }
    /// <summary>Sampler name of generated samples (<c>ddim</c>, <c>ddpm</c>, <c>dpm++2m</c>), else null.</summary>
    public string? Sampler { get; init; }
    /// <summary>Sampling steps of generated samples, else null.</summary>
    public int? Steps { get; init; }
    /// <summary>Classifier-free guidance scale of generated samples, else null.</summary>
    public double? Guidance { get; init; }
    /// <summary>Compute dtype of the denoiser while sampling (float32 or bf16).</summary>
    public string? Dtype { get; init; }
    /// <summary>When the report was made (UTC).</summary>
    public DateTime CreatedUtc { get; init; } = DateTime.UtcNow;

    static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>The report as indented JSON with snake_case keys (the form <see cref="Save"/> writes).</summary>
    public string ToJson() => JsonSerializer.Serialize(this, Options);

    /// <summary>Writes the report as JSON, atomically.</summary>
    public void Save(string path) => AtomicFile.WriteAllText(path, ToJson() + "\n");

    /// <summary>Reads a report written by <see cref="Save"/>; throws <see cref="LdmException"/> if the file is not one.</summary>
    public static EvaluationReport Load(string path)
    {
        try { return JsonSerializer.Deserialize<EvaluationReport>(File.ReadAllText(path), Options) ?? throw new JsonException("empty"); }
        catch (JsonException e) { throw new LdmException($"'{path}' is not an evaluation report ({e.Message}); re-run `ldm evaluate`."); }
    }
}
