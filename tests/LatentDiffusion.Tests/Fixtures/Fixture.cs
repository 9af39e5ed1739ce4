using System.Text.Json.Nodes;
using LatentDiffusion.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests.Fixtures;

/// <summary>One golden-fixture folder: its manifest, its data file and (for models) its weights file.</summary>
public sealed class Fixture : IDisposable
{
    public string Dir { get; }
    /// <summary>The folder's name in reports (see <see cref="FixtureRoot.NameOf"/>).</summary>
    public string Name { get; }
    public JsonObject Manifest { get; }
    public string Kind => (string)Manifest["kind"]!;
    public SafetensorsFile Data { get; }
    public IReadOnlyList<FixtureCase> Cases { get; }

    public Fixture(string dir, string? name = null)
    {
        Dir = dir;
        Name = name ?? Path.GetFileName(dir);
        Manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "manifest.json")))!.AsObject();
        Data = SafetensorsFile.Open(Path.Combine(dir, (string?)Manifest["data"] ?? "data.safetensors"));
        Cases = Manifest["cases"]!.AsArray().Select(c => new FixtureCase(this, c!.AsObject())).ToList();
    }

    /// <summary>model.config of the manifest.</summary>
    public JsonObject ModelConfig => Manifest["model"]!["config"]!.AsObject();

    /// <summary>The first case of an op that has every named input, or null: tests find the call they need by what
    /// it is, not by a case name of one fixture set.</summary>
    public FixtureCase? CaseWithOp(string op, params string[] inputs) =>
        Cases.FirstOrDefault(c => c.Op == op && inputs.All(c.Inputs.ContainsKey));

    /// <summary>Path of the model's weights file.</summary>
    public string WeightsPath => Path.Combine(Dir, (string?)Manifest["model"]?["weights"] ?? "weights.safetensors");

    /// <summary>Every folder with a manifest.json under the fixtures root.</summary>
    public static IEnumerable<string> FindAll(string root) =>
        Directory.Exists(root)
            ? Directory.EnumerateFiles(root, "manifest.json", SearchOption.AllDirectories).Select(Path.GetDirectoryName).OrderBy(d => d, StringComparer.Ordinal)!
            : [];

    public void Dispose() => Data.Dispose();
}

/// <summary>One case of a fixture: an official call with named inputs, scalar params and expected outputs.</summary>
public sealed class FixtureCase(Fixture fixture, JsonObject raw)
{
    public Fixture Fixture { get; } = fixture;
    public JsonObject Raw { get; } = raw;
    public string Name => (string)Raw["name"]!;
    public string Op => (string)Raw["op"]!;

    public IReadOnlyDictionary<string, string> Inputs => Map("inputs");
    public IReadOnlyDictionary<string, string> Outputs => Map("outputs");
    public IReadOnlyDictionary<string, string> DebugOutputs => Map("debug_outputs");

    IReadOnlyDictionary<string, string> Map(string field) =>
        Raw[field] is JsonObject o ? o.ToDictionary(kv => kv.Key, kv => (string)kv.Value!) : new Dictionary<string, string>();

    /// <summary>Reads the input tensor bound to an argument name of the call.</summary>
    public Tensor Input(string arg) => Fixture.Data.Read(Inputs[arg]);

    public bool HasParam(string name) => Raw["params"] is JsonObject p && p.ContainsKey(name) && p[name] is not null;
    public double Param(string name) => Raw["params"]![name]!.GetValue<double>();
    public int IntParam(string name) => (int)Raw["params"]![name]!.GetValue<double>();
    public bool BoolParam(string name) => Raw["params"]![name]!.GetValue<bool>();
    public JsonNode? ParamNode(string name) => Raw["params"]?[name];

    /// <summary>Extra per-case objects (e.g. `diffusion` for the create_diffusion arguments).</summary>
    public JsonObject? Section(string name) => Raw[name] as JsonObject;

    public long? TorchSeed => Raw["torch_seed"]?.GetValue<long>();

    public Tolerance ToleranceFor(string output, bool debug = false)
    {
        var node = Raw[debug ? "debug_tolerance" : "tolerance"]?[output];
        if (node is null) return new Tolerance(1e-4, 1e-5);
        return new Tolerance(node["rtol"]?.GetValue<double>() ?? 1e-4, node["atol"]?.GetValue<double>() ?? 1e-5);
    }
}

public readonly record struct Tolerance(double Rtol, double Atol);
