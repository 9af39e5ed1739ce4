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
    public string Format { get; init; } = "ldm-evaluation/1";
    public required string FeatureNetwork { get; init; }
    /// <summary>fid, precision, recall, inception_score_mean/std, sample_accuracy, reference_accuracy (those computed).</summary>
    public required SortedDictionary<string, double> Metrics { get; init; }
    public long SampleCount { get; init; }
    public long? ReferenceCount { get; init; }
    public string Samples { get; init; } = "";
    public string Reference { get; init; } = "";
    public long Seed { get; init; }
    public int? NearestK { get; init; }
    /// <summary>The denoiser checkpoint the samples were generated from (ldm evaluate --model).</summary>
    public string? Model { get; init; }
    public string? Sampler { get; init; }
    public int? Steps { get; init; }
    public double? Guidance { get; init; }
    /// <summary>Compute dtype of the denoiser while sampling (float32 or bf16).</summary>
    public string? Dtype { get; init; }
    public DateTime CreatedUtc { get; init; } = DateTime.UtcNow;

    static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public string ToJson() => JsonSerializer.Serialize(this, Options);

    /// <summary>Writes the report as JSON, atomically.</summary>
    public void Save(string path) => AtomicFile.WriteAllText(path, ToJson() + "\n");

    public static EvaluationReport Load(string path)
    {
        try { return JsonSerializer.Deserialize<EvaluationReport>(File.ReadAllText(path), Options) ?? throw new JsonException("empty"); }
        catch (JsonException e) { throw new LdmException($"'{path}' is not an evaluation report ({e.Message}); re-run `ldm evaluate`."); }
    }
}
