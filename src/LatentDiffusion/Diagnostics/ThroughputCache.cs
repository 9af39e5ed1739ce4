using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using LatentDiffusion.IO;

namespace LatentDiffusion.Diagnostics;

/// <summary>
/// The measured float32 and bf16 product speeds of each machine, in one small JSON file (by default
/// <c>$XDG_CACHE_HOME/ldm/matmul-throughput.json</c>, else <c>~/.cache/ldm/</c>): measured once per key (CPU model,
/// torch threads, libtorch version, product size), read afterwards. A cache is never an error: a missing, unreadable or
/// corrupt file, or one without the key, reads as nothing (the caller measures again), and a failed write is ignored.
/// </summary>
public static class ThroughputCache
{
    const string Format = "ldm-matmul-throughput/1";

    /// <summary>The cache file: <c>LDM_CACHE_DIR</c>, else <c>XDG_CACHE_HOME/ldm</c>, else <c>~/.cache/ldm</c>; null when no home is known.</summary>
    public static string? DefaultPath
    {
        get
        {
            string? dir = Environment.GetEnvironmentVariable("LDM_CACHE_DIR") is { Length: > 0 } ldm ? ldm
                : Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } xdg ? Path.Combine(xdg, "ldm")
                : Environment.GetFolderPath(Environment.SpecialFolder.UserProfile) is { Length: > 0 } home ? Path.Combine(home, ".cache", "ldm")
                : null;
            return dir is null ? null : Path.Combine(dir, "matmul-throughput.json");
        }
    }

    /// <summary>The float32 and bf16 GFLOP/s stored under <paramref name="key"/>, or null (no file, no key, or a corrupt file).</summary>
    public static (double Float32, double Bf16)? TryRead(string path, string key)
    {
        try
        {
            if (!File.Exists(path)) return null;
            var entry = Entries(JsonNode.Parse(File.ReadAllText(path)))?[key];
            double f32 = entry?["float32_gflops"]?.GetValue<double>() ?? double.NaN;
            double bf16 = entry?["bf16_gflops"]?.GetValue<double>() ?? double.NaN;
            return f32 > 0 && bf16 > 0 && double.IsFinite(f32) && double.IsFinite(bf16) ? (f32, bf16) : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException or InvalidOperationException or FormatException)
        {
            return null;
        }
    }

    /// <summary>Stores the speeds under <paramref name="key"/>, keeping the other machines' entries of a readable file;
    /// written to a temporary file and renamed, so a reader never sees half a file. Returns false when it could not write.</summary>
    public static bool Write(string path, string key, double float32, double bf16)
    {
        JsonObject entries;
        try { entries = File.Exists(path) ? Entries(JsonNode.Parse(File.ReadAllText(path)))?.DeepClone() as JsonObject ?? [] : []; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException or InvalidOperationException) { entries = []; }
        entries[key] = new JsonObject
        {
            ["float32_gflops"] = Math.Round(float32, 1),
            ["bf16_gflops"] = Math.Round(bf16, 1),
            ["measured"] = DateTime.UtcNow.ToString("O", CultureInfo.InvariantCulture),
        };
        var json = new JsonObject { ["format"] = Format, ["entries"] = entries };
        try
        {
            AtomicFile.WriteAllText(path, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
            return true;
        }
        catch (Exception e) when (e is LdmException or IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    static JsonObject? Entries(JsonNode? root) =>
        root is JsonObject o && o["format"]?.GetValue<string>() == Format ? o["entries"] as JsonObject : null;
}
