using System.Text.Json.Serialization;
using LatentDiffusion.Diffusion;

namespace LatentDiffusion.Denoisers;

/// <summary>
/// The sampling settings a model draws best with, stored in its checkpoint (set by <c>ldm train</c>, changed by
/// <c>ldm export</c>); used whenever a caller gives none. The shapes class model, for one, draws best without guidance.
/// </summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed record RecommendedSampling
{
    /// <summary>The sampler, by its name (<c>ddim</c>, <c>ddpm</c>, <c>dpm++2m</c>).</summary>
    [JsonPropertyName("sampler"), JsonConverter(typeof(SamplerKindJsonConverter))]
    public SamplerKind Sampler { get; init; } = SamplerKind.Ddim;
    /// <summary>Reverse-process steps.</summary>
    [JsonPropertyName("steps")] public int Steps { get; init; } = 50;
    /// <summary>Classifier-free guidance scale; 1 = none.</summary>
    [JsonPropertyName("guidance")] public double GuidanceScale { get; init; } = 4.0;

    /// <summary>DDIM, 50 steps, guidance 4 when the model has an unconditional input, else 1 (what training's sample grids use).</summary>
    public static RecommendedSampling For(IBackboneConfig backbone) =>
        new() { GuidanceScale = backbone.HasUnconditionalInput ? 4.0 : 1.0 };

    /// <summary>These settings with the ones a caller gave in their place (null: keep this one).</summary>
    public RecommendedSampling With(SamplerKind? sampler, int? steps, double? guidanceScale) => this with
    {
        Sampler = sampler ?? Sampler,
        Steps = steps ?? Steps,
        GuidanceScale = guidanceScale ?? GuidanceScale,
    };

    /// <summary>Throws <see cref="LdmOptionException"/> for a setting no sampler accepts.</summary>
    public RecommendedSampling Check()
    {
        if (Steps < 1) throw new LdmOptionException(nameof(RecommendedSampling), nameof(Steps), Steps, "be at least 1", "50 is usual");
        if (!(GuidanceScale >= 0) || !double.IsFinite(GuidanceScale))
            throw new LdmOptionException(nameof(RecommendedSampling), nameof(GuidanceScale), GuidanceScale, "be a finite number >= 0", "1 means no guidance");
        return this;
    }
}

/// <summary>Writes and reads a <see cref="SamplerKind"/> as its one name (<see cref="Samplers.Name"/>).</summary>
internal sealed class SamplerKindJsonConverter : JsonConverter<SamplerKind>
{
    public override SamplerKind Read(ref System.Text.Json.Utf8JsonReader reader, Type typeToConvert, System.Text.Json.JsonSerializerOptions options) =>
        Samplers.Parse(reader.GetString() ?? "");

    public override void Write(System.Text.Json.Utf8JsonWriter writer, SamplerKind value, System.Text.Json.JsonSerializerOptions options) =>
        writer.WriteStringValue(Samplers.Name(value));
}
