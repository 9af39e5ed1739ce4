using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace LatentDiffusion.Cli;

/// <summary>
/// A training recipe: a JSON file (in <c>recipes/</c>) naming the data, the autoencoder to train first (optional) and
/// the diffusion model with its training settings, as the options of <c>ldm train-autoencoder</c> and <c>ldm train</c>:
/// <code>{ "description": "...", "autoencoder": { "data": "shapes", "config": "f4-32-small", "steps": 1500 },
///   "train": { "data": "shapes", "preset": "S/2", "steps": 4000, "bf16": true } }</code>
/// <c>ldm train --recipe NAME --out DIR [options]</c> expands into those commands (the autoencoder into DIR/autoencoder,
/// skipped when finished, resumed when interrupted; the diffusion model into DIR, encoding the data once with that
/// autoencoder); options on the command line override the recipe's. The expanded commands are printed, so every run
/// states exactly what it ran.
/// </summary>
public sealed record Recipe(string Name, string Path, string Description, JsonObject? Autoencoder, JsonObject Train)
{
    public const string Folder = "recipes";
    public const string AutoencoderFolder = "autoencoder";

    /// <summary>A recipe by file path, or by name from a <c>recipes/</c> folder of the working directory or of the ldm install (searched upwards).</summary>
    public static Recipe Load(string nameOrPath)
    {
        string? path = File.Exists(nameOrPath) ? nameOrPath : Find(nameOrPath);
        if (path is null)
        {
            var known = KnownNames();
            throw new LdmException($"recipe '{nameOrPath}' was not found; use one of {(known.Count > 0 ? string.Join(", ", known) : "the recipes/ folder of the repository")} or a path to a recipe JSON file.");
        }
        JsonObject json;
        try { json = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new JsonException("the file is not a JSON object"); }
        catch (JsonException e) { throw new LdmException($"recipe '{path}' is not valid JSON ({e.Message.Split('\n')[0]}); fix the file."); }
        var unknown = json.Select(kv => kv.Key).FirstOrDefault(k => k is not ("description" or "autoencoder" or "train"));
        if (unknown != null) throw new LdmException($"recipe '{path}' has an unknown section '{unknown}'; a recipe has description, autoencoder and train.");
        if (json["train"] is not JsonObject train) throw new LdmException($"recipe '{path}' has no \"train\" section; add the options of ldm train.");
        return new Recipe(System.IO.Path.GetFileNameWithoutExtension(path), path, (string?)json["description"] ?? "", json["autoencoder"] as JsonObject, train);
    }

    /// <summary>Candidate places of a repository folder (recipes/, models/): in the working directory or the ldm install, and their parents.</summary>
    internal static IEnumerable<string> SearchRoots(string folder = Folder)
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
            for (var dir = new DirectoryInfo(start); dir != null; dir = dir.Parent)
                yield return System.IO.Path.Combine(dir.FullName, folder);
    }

    static string? Find(string name) => SearchRoots().Select(r => System.IO.Path.Combine(r, name + ".json")).FirstOrDefault(File.Exists);

    static List<string> KnownNames() => SearchRoots().Where(Directory.Exists).Take(1)
        .SelectMany(d => Directory.EnumerateFiles(d, "*.json")).Select(f => System.IO.Path.GetFileNameWithoutExtension(f)).Order().ToList();

    /// <summary>
    /// The command lines that `ldm train` arguments holding <c>--recipe</c> stand for (null when they hold none):
    /// train-autoencoder (when the recipe has one and it has not finished), then train.
    /// </summary>
    public static List<string[]>? Expand(string[] args) => Expand(args, null);

    /// <summary><see cref="Expand(string[])"/>, checking every key of the recipe against the options of the commands
    /// of <paramref name="root"/> (a misspelled false flag would otherwise vanish silently, any other one end in a
    /// parse error that does not name the recipe).</summary>
    public static List<string[]>? Expand(string[] args, System.CommandLine.RootCommand? root)
    {
        if (args.Length == 0 || args[0] != "train") return null;
        int at = Array.FindIndex(args, a => a == "--recipe" || a.StartsWith("--recipe=", StringComparison.Ordinal));
        if (at < 0) return null;
        string name;
        var user = args.Skip(1).ToList();
        if (args[at].StartsWith("--recipe=", StringComparison.Ordinal)) { name = args[at]["--recipe=".Length..]; user.RemoveAt(at - 1); }
        else
        {
            if (at + 1 >= args.Length) throw new LdmException("--recipe needs a name (shapes-class, shapes-text, fashion-mnist, emoji-text) or a recipe file.");
            name = args[at + 1];
            user.RemoveRange(at - 1, 2);
        }
        var recipe = Load(name);
        if (root is not null)
        {
            CheckKeys(recipe, "train", recipe.Train, root);
            if (recipe.Autoencoder is { } section) CheckKeys(recipe, "train-autoencoder", section, root);
        }
        var given = user.Where(a => a.StartsWith('-')).Select(a => Canonical(a.Split('=')[0])).ToHashSet();
        string out1 = ValueOf(user, "--out") ?? throw new LdmException("--recipe needs --out DIR, the run folder (the autoencoder goes into DIR/autoencoder).");

        var commands = new List<string[]>();
        var train = new List<string> { "train" };
        if (recipe.Autoencoder is { } ae && !given.Contains("--autoencoder"))
        {
            string aeDir = System.IO.Path.Combine(out1, AutoencoderFolder);
            string aeFile = System.IO.Path.Combine(aeDir, "autoencoder.safetensors");
            int steps = ae["steps"]?.GetValue<int>() ?? 10000;
            if (!Finished(aeFile, steps))
            {
                var aeArgs = new List<string> { "train-autoencoder" };
                aeArgs.AddRange(Tokens(ae, []));
                aeArgs.AddRange(["--out", aeDir]);
                commands.Add(aeArgs.ToArray());
            }
            train.AddRange(["--autoencoder", aeFile]);
        }
        train.AddRange(Tokens(recipe.Train, given));
        train.AddRange(user);
        commands.Add(train.ToArray());
        return commands;
    }

    static void CheckKeys(Recipe recipe, string command, JsonObject section, System.CommandLine.RootCommand root)
    {
        var target = root.Subcommands.FirstOrDefault(c => c.Name == command);
        if (target is null) return;
        var options = target.Options.SelectMany(o => o.Aliases.Prepend(o.Name)).Where(n => n.StartsWith("--", StringComparison.Ordinal))
            .Select(n => n[2..]).ToList();
        string sectionName = command == "train" ? "train" : "autoencoder";
        foreach (var (key, _) in section)
        {
            if (options.Contains(key.Replace('_', '-'))) continue;
            string fix = IO.ConfigKeys.Closest(key, options) is { } near ? $"did you mean \"{near}\"?" : $"run `ldm {command} --help` for the options";
            throw new LdmException($"recipe '{recipe.Path}': \"{sectionName}\" has an unknown key \"{key}\" ({fix}); its keys are the options of ldm {command}.");
        }
    }

    /// <summary>An autoencoder run is finished when its model file records the recipe's step count.</summary>
    static bool Finished(string aeFile, int steps)
    {
        if (!File.Exists(aeFile)) return false;
        try
        {
            using var f = IO.SafetensorsFile.Open(aeFile);
            return f.Metadata.TryGetValue("ldm.train.step", out var s) && long.Parse(s, CultureInfo.InvariantCulture) >= steps;
        }
        catch (LdmException) { return false; }
    }

    static string Canonical(string option) => option switch
    {
        "-o" => "--out", "-d" => "--data", "-a" => "--autoencoder", _ => option,
    };

    static string? ValueOf(List<string> args, string option)
    {
        for (int i = 0; i < args.Count; i++)
        {
            if (Canonical(args[i]) == option && i + 1 < args.Count) return args[i + 1];
            if (args[i].StartsWith(option + "=", StringComparison.Ordinal)) return args[i][(option.Length + 1)..];
        }
        return null;
    }

    /// <summary>A recipe section as command-line tokens: "key": value → --key value; true → --key; false → nothing.</summary>
    internal static IEnumerable<string> Tokens(JsonObject section, HashSet<string> skip)
    {
        foreach (var (key, value) in section)
        {
            string option = "--" + key.Replace('_', '-');
            if (skip.Contains(option)) continue;
            switch (value)
            {
                case JsonValue v when v.TryGetValue(out bool b):
                    if (b) yield return option;
                    break;
                case JsonValue v when v.TryGetValue(out string? s):
                    yield return option; yield return s!;
                    break;
                case JsonValue v when v.TryGetValue(out double d):
                    yield return option; yield return d.ToString("R", CultureInfo.InvariantCulture);
                    break;
                default:
                    throw new LdmException($"recipe option \"{key}\" has the value {value?.ToJsonString() ?? "null"}; use a string, a number or true/false.");
            }
        }
    }
}
