using LatentDiffusion.Diagnostics;
using static TorchSharp.torch;

namespace LatentDiffusion.Cli.Grammar;

/// <summary>The dtype names of <c>--dtype</c>: <c>float32</c>, <c>bf16</c>, <c>f16</c>, the same in every command, and
/// <c>auto</c> where a model computes (training, sampling: the faster of float32 and bf16 on this machine).</summary>
public static class DtypeNames
{
    static readonly (ScalarType Type, string Name)[] Table =
    [
        (ScalarType.Float32, "float32"), (ScalarType.BFloat16, "bf16"), (ScalarType.Float16, "f16"),
    ];

    public static string Of(ScalarType type) => Table.FirstOrDefault(t => t.Type == type).Name ?? type.ToString().ToLowerInvariant();

    /// <summary>Parses a name among <paramref name="supported"/> (by default all three); another known name is refused
    /// with what this command supports.</summary>
    public static ScalarType Parse(string? text, params ScalarType[] supported) => Parse(text, auto: false, supported).Fixed!.Value;

    /// <summary>A compute dtype: <c>auto</c> or a name among <paramref name="supported"/>.</summary>
    public static ComputeDtype ParseCompute(string? text, params ScalarType[] supported) => Parse(text, auto: true, supported);

    static ComputeDtype Parse(string? text, bool auto, ScalarType[] supported)
    {
        if (supported.Length == 0) supported = Table.Select(t => t.Type).ToArray();
        string list = (auto ? "auto, " : "") + ListOf(supported);
        string name = (text ?? "").Trim().ToLowerInvariant();
        if (auto && name == "auto") return ComputeDtype.Auto;
        foreach (var (type, known) in Table)
            if (known == name)
                return supported.Contains(type) ? type : throw new LdmException($"--dtype {name} is not supported here; write {list}.");
        throw new LdmException($"--dtype '{text}' is not a dtype; write {list}.");
    }

    /// <summary>"float32 or bf16", "float32, bf16 or f16".</summary>
    public static string ListOf(params ScalarType[] types)
    {
        var names = types.Select(Of).ToList();
        return names.Count == 1 ? names[0] : string.Join(", ", names[..^1]) + " or " + names[^1];
    }

    /// <summary>The line a command prints about its dtype: "dtype auto → bf16 (bf16 product 640 GFLOP/s vs float32 160 on
    /// AMD EPYC ...)" when auto chose it, else "dtype bf16".</summary>
    public static string Chosen(ComputeDtype asked, ScalarType used, Device? device) =>
        asked.IsAuto ? $"dtype auto → {ComputePrecision.Auto(device)}" : $"dtype {Of(used)}";
}
