using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using LatentDiffusion.Cli.Commands;
using LatentDiffusion.Studies;
using LatentDiffusion.Training;

namespace LatentDiffusion.Cli;

/// <summary>
/// A study file for <c>ldm study</c>: the data, the settings every configuration shares, and the configurations, each
/// written with the model options of <c>ldm train</c> (as in a recipe: "key": value for --key value):
/// <code>{ "description": "...", "data": "fashion-mnist", "autoencoder": "models/fashion-mnist-autoencoder.safetensors",
///   "model": { "prediction": "v", "no-learn-sigma": true },
///   "train": { "steps": 3000, "batch-size": 64, "lr": 5e-4, "warmup": 100, "ema-decay": 0.999, "dtype": "bf16" },
///   "budget": "steps", "seeds": [0, 1], "eval-every": 500,
///   "evaluate": { "samples": 1000, "features": "classifier:models/fashion-mnist-classifier.safetensors", "reference": "fashion-mnist:test" },
///   "configs": { "in-context": { "preset": "S/2", "patch-size": 1, "hidden-size": 128, "depth": 4 }, "unet": { "backbone": "unet", ... } } }</code>
/// Data, training and evaluation settings exist once, at the top, so the configurations cannot differ in them; a
/// configuration holding one of them is refused.
/// </summary>
public sealed record StudySpec(string Path, string Description, string Data, string? Autoencoder, string Condition, TrainCommand.TextChoice Text,
    DiffusionTrainingOptions Training, StudyBudget Budget, IReadOnlyList<long> Seeds, int EvaluateEvery, JsonObject Evaluate,
    IReadOnlyList<(string name, TrainCommand.ModelChoice model)> Configurations)
{
    static readonly string[] TopKeys = ["description", "data", "autoencoder", "condition", "text-tokenizer", "max-text-tokens", "caption-dropout", "text-encoder-layers",
        "model", "train", "budget", "seeds", "eval-every", "evaluate", "configs"];
    static readonly string[] EvaluateKeys = ["samples", "features", "reference", "max-reference", "checker", "sampler", "steps", "guidance", "batch-size", "seed", "grid"];

    /// <summary>Reads and checks a study file; every mistake is one <see cref="LdmException"/> naming the key.</summary>
    public static StudySpec Load(string path)
    {
        if (Directory.Exists(path)) throw new LdmException($"study file '{path}' is a folder; give the path of a study JSON file (see docs/study.md).");
        if (!File.Exists(path)) throw new LdmException($"study file '{path}' does not exist; give the path of a study JSON file (see docs/study.md).");
        JsonObject json;
        try { json = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new JsonException("the file is not a JSON object"); }
        catch (JsonException e) { throw new LdmException($"study file '{path}' is not valid JSON ({e.Message.Split('\n')[0]}); fix the file."); }
        string Where(string key) => $"study file '{path}': \"{key}\"";
        if (json.Select(kv => kv.Key).FirstOrDefault(k => !TopKeys.Contains(k)) is { } unknown)
            throw new LdmException($"{Where(unknown)} is not a study setting; use {string.Join(", ", TopKeys)} (model options go into \"model\" or a configuration, training options into \"train\").");

        string data = StringOf(json, "data", path) ?? throw new LdmException($"study file '{path}' names no \"data\"; add the training data (as ldm train --data).");
        var shared = json["model"] as JsonObject ?? (json["model"] is null ? new JsonObject() : throw new LdmException($"{Where("model")} must be an object of model options."));
        var train = json["train"] as JsonObject ?? throw new LdmException($"study file '{path}' has no \"train\" object; add the shared training options (steps, batch-size, lr, ...).");
        var evaluate = json["evaluate"] as JsonObject ?? throw new LdmException($"study file '{path}' has no \"evaluate\" object; add how to measure (samples, features and reference, or checker).");
        if (evaluate.Select(kv => kv.Key).FirstOrDefault(k => !EvaluateKeys.Contains(k)) is { } badEval)
            throw new LdmException($"{Where("evaluate." + badEval)} is unknown; use {string.Join(", ", EvaluateKeys)}.");
        if (json["configs"] is not JsonObject configs || configs.Count == 0)
            throw new LdmException($"study file '{path}' has no \"configs\"; add an object of named configurations (each an object of ldm train model options).");

        var training = ParseTraining(train, path);
        var models = new List<(string, TrainCommand.ModelChoice)>();
        foreach (var (name, value) in configs)
        {
            if (value is not JsonObject config) throw new LdmException($"{Where("configs." + name)} must be an object of model options.");
            var merged = new JsonObject();
            foreach (var (k, v) in shared) merged[k] = v?.DeepClone();
            foreach (var (k, v) in config) merged[k] = v?.DeepClone();
            models.Add((name, ParseModel(merged, config, name, path)));
        }
        var budget = (StringOf(json, "budget", path) ?? "steps").Trim().ToLowerInvariant() switch
        {
            "steps" => StudyBudget.EqualSteps,
            "flops" => StudyBudget.EqualFlops,
            var b => throw new LdmException($"{Where("budget")} '{b}' is unknown; use steps (equal steps) or flops (equal training FLOPs)."),
        };
        var seeds = json["seeds"] switch
        {
            null => [0L],
            JsonArray a => a.Select(n => n is JsonValue v && v.TryGetValue(out long s) ? s : throw new LdmException($"{Where("seeds")} must be a list of integers, e.g. [0, 1].")).ToList(),
            _ => throw new LdmException($"{Where("seeds")} must be a list of integers, e.g. [0, 1]."),
        };
        int evalEvery = Int(json, "eval-every", path) ?? training.Steps;
        return new StudySpec(path, StringOf(json, "description", path) ?? "", data, StringOf(json, "autoencoder", path), StringOf(json, "condition", path) ?? "auto",
            new TrainCommand.TextChoice(StringOf(json, "text-tokenizer", path) ?? "word", Int(json, "max-text-tokens", path), Double(json, "caption-dropout", path) ?? 0.1,
                Int(json, "text-encoder-layers", path) ?? 0),
            training, budget, seeds, evalEvery, evaluate, models);
    }

    static DiffusionTrainingOptions ParseTraining(JsonObject train, string path)
    {
        var (options, read) = TrainCommand.TrainingOptions();
        var command = new Command("train");
        foreach (var o in options) command.Options.Add(o);
        var parse = command.Parse(Tokens(train, path, "train").ToArray());
        if (parse.Errors.Count > 0)
            throw new LdmException($"study file '{path}': \"train\": {parse.Errors[0].Message.TrimEnd('.')}; use the training options of ldm train (steps, batch-size, lr, warmup, grad-clip, ema-decay, dtype, log-every, checkpoint-every).");
        var training = read(parse);
        training.Validate();
        return training;
    }

    static TrainCommand.ModelChoice ParseModel(JsonObject merged, JsonObject own, string name, string path)
    {
        var (options, read) = TrainCommand.ModelOptions();
        var (trainOptions, _) = TrainCommand.TrainingOptions();
        foreach (var (key, _) in own)
            if (trainOptions.Any(o => o.Name == "--" + key) || key is "data" or "autoencoder" or "condition" or "seed" or "steps")
                throw new LdmException($"study file '{path}': configuration '{name}' sets \"{key}\", which every configuration of a study shares; move it to the top level or to \"train\".");
        var command = new Command("config");
        foreach (var o in options) command.Options.Add(o);
        var parse = command.Parse(Tokens(merged, path, $"configs.{name}").ToArray());
        if (parse.Errors.Count > 0)
            throw new LdmException($"study file '{path}': configuration '{name}': {parse.Errors[0].Message.TrimEnd('.')}; use the model options of ldm train (backbone, preset, block, hidden-size, depth, ..., unet-preset, model-channels, ...).");
        return read(parse);
    }

    static IEnumerable<string> Tokens(JsonObject section, string path, string where)
    {
        try { return Recipe.Tokens(section, []).ToList(); }
        catch (LdmException e) { throw new LdmException($"study file '{path}': \"{where}\": {e.Message}"); }
    }

    internal static string? StringOf(JsonObject o, string key, string path) => o[key] switch
    {
        null => null,
        JsonValue v when v.TryGetValue(out string? s) => s,
        _ => throw new LdmException($"study file '{path}': \"{key}\" must be a string."),
    };

    internal static int? Int(JsonObject o, string key, string path) => o[key] switch
    {
        null => null,
        JsonValue v when v.TryGetValue(out int i) => i,
        JsonValue v when v.TryGetValue(out double d) && d == Math.Floor(d) && d is >= int.MinValue and <= int.MaxValue => (int)d,
        _ => throw new LdmException($"study file '{path}': \"{key}\" must be an integer."),
    };

    internal static double? Double(JsonObject o, string key, string path) => o[key] switch
    {
        null => null,
        JsonValue v when v.TryGetValue(out double d) => d,
        _ => throw new LdmException($"study file '{path}': \"{key}\" must be a number."),
    };


    /// <summary>The settings as one line, for the command's first output.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{Configurations.Count} configurations × {Seeds.Count} seeds on {Data}, {Training.Steps} steps ({(Budget == StudyBudget.EqualSteps ? "equal steps" : "equal training FLOPs")}), evaluated every {EvaluateEvery}");
}
