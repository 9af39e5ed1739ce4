using System.Text.Json;
using System.Text.Json.Serialization;
using LatentDiffusion.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion;

/// <summary>
/// The dtype a denoiser computes in, as asked for: a fixed one (float32, bf16, f16) or <see cref="Auto"/>, the faster
/// of float32 and bf16 on this machine (<see cref="ComputePrecision.Auto"/> measures their matrix products once and
/// caches the result per CPU). Which precision is fastest is a property of the CPU, not of the model: bf16 products are
/// 4x float32's on a Zen 5 EPYC and slower than float32 on a Xeon without AMX (docs/performance.md).
/// A <see cref="ScalarType"/> converts to it implicitly, so code that passes <c>ScalarType.BFloat16</c> keeps working.
/// </summary>
[JsonConverter(typeof(ComputeDtypeJsonConverter))]
public readonly record struct ComputeDtype
{
    ComputeDtype(ScalarType? type) => Fixed = type;

    /// <summary>The dtype asked for, or null for <see cref="Auto"/>.</summary>
    public ScalarType? Fixed { get; }

    /// <summary>The dtype is chosen by measuring this machine (<see cref="Resolve"/>).</summary>
    public bool IsAuto => Fixed is null;

    /// <summary>The faster of float32 and bf16 on this machine (the default value of the type).</summary>
    public static ComputeDtype Auto => default;
    /// <summary>float32 throughout.</summary>
    public static ComputeDtype Float32 => new(ScalarType.Float32);
    /// <summary>bf16 (training: mixed precision, float32 master weights).</summary>
    public static ComputeDtype BFloat16 => new(ScalarType.BFloat16);
    /// <summary>float16 (sampling only).</summary>
    public static ComputeDtype Float16 => new(ScalarType.Float16);

    /// <summary>The names <see cref="Parse"/> accepts, the same as the tool's <c>--dtype</c>.</summary>
    public const string Names = "auto, float32, bf16 or f16";

    /// <summary>A fixed dtype; only the floating types a denoiser can compute in.</summary>
    public static implicit operator ComputeDtype(ScalarType type) =>
        type is ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16
            ? new ComputeDtype(type)
            : throw new LdmOptionException(nameof(ComputeDtype), "dtype", type, "be Float32, BFloat16 or Float16");

    /// <summary>The dtype to compute in: the fixed one, or what <see cref="ComputePrecision.Auto"/> picks for <paramref name="device"/>
    /// (measured the first time on this machine, then read from the cache).</summary>
    public ScalarType Resolve(Device? device = null) => Fixed ?? ComputePrecision.Auto(device).Dtype;

    /// <summary>"auto", "float32", "bf16" or "f16".</summary>
    public override string ToString() => Fixed switch
    {
        null => "auto",
        ScalarType.Float32 => "float32",
        ScalarType.BFloat16 => "bf16",
        ScalarType.Float16 => "f16",
        var t => t.ToString()!.ToLowerInvariant(),
    };

    /// <summary>Reads <see cref="Names"/> (case-insensitive; also float, bfloat16, float16); anything else is an <see cref="LdmException"/>.</summary>
    public static ComputeDtype Parse(string? text) => (text ?? "").Trim().ToLowerInvariant() switch
    {
        "auto" => Auto,
        "float32" or "float" or "fp32" => Float32,
        "bf16" or "bfloat16" => BFloat16,
        "f16" or "float16" or "fp16" => Float16,
        _ => throw new LdmException($"'{text}' is not a compute dtype; write {Names}."),
    };
}

/// <summary>Writes a <see cref="ComputeDtype"/> as its name ("auto", "bf16", ...), so options records serialize readably.</summary>
public sealed class ComputeDtypeJsonConverter : JsonConverter<ComputeDtype>
{
    /// <inheritdoc/>
    public override ComputeDtype Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        ComputeDtype.Parse(reader.GetString());

    /// <inheritdoc/>
    public override void Write(Utf8JsonWriter writer, ComputeDtype value, JsonSerializerOptions options) =>
        writer.WriteStringValue(value.ToString());
}
