using System.Text.Json.Serialization;

namespace LatentDiffusion.Server;

/// <summary>The JSON of <c>POST /api/generate</c>: the model and what <c>ldm sample</c> takes, by the same names
/// (unset settings come from the model's recommended sampling). An unknown key is an error, never ignored.</summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed record GenerateBody
{
    [JsonPropertyName("model")] public string? Model { get; init; }
    /// <summary>Class models: class ids (null: every class).</summary>
    [JsonPropertyName("classes")] public int[]? Classes { get; init; }
    /// <summary>Text models: captions.</summary>
    [JsonPropertyName("prompts")] public string[]? Prompts { get; init; }
    [JsonPropertyName("num")] public int? Num { get; init; }
    [JsonPropertyName("sampler")] public string? Sampler { get; init; }
    [JsonPropertyName("steps")] public int? Steps { get; init; }
    [JsonPropertyName("guidance")] public double? Guidance { get; init; }
    [JsonPropertyName("eta")] public double Eta { get; init; }
    [JsonPropertyName("seed")] public long Seed { get; init; }
}
