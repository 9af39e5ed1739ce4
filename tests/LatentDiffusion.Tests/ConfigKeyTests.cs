using System.Text.Json.Nodes;
using LatentDiffusion.Autoencoders;
using LatentDiffusion.Evaluation;
using LatentDiffusion.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests;

/// <summary>
/// Every JSON config the tool reads refuses a key it does not know, naming it and the key it most likely meant, instead
/// of silently using the default (issue 12): a model's stored config (each section), an autoencoder config file or
/// checkpoint, a classifier checkpoint, a recipe. CompVis ddconfig JSON keeps its deliberately ignored extra keys. A
/// checkpoint of a newer file format is refused with "update". (PipelineTests covers the transformer, diffusion and
/// top-level keys of a denoiser.)
/// </summary>
[Collection(ConsoleCollection.Name)]
public sealed class ConfigKeyTests : IDisposable
{
    readonly string _dir = RepoPaths.NewTempDir("config-keys");

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    [Theory]
    [InlineData("hiden_size", "hidden_size")]
    [InlineData("stpes", "steps")]
    [InlineData("Hidden-Size", "hidden_size")]
    [InlineData("num_res_block", "num_res_blocks")]
    [InlineData("colour", null)]
    [InlineData("k", null)]
    public void TheClosestKnownKeyIsSuggestedOnlyWhenNear(string key, string? expected) =>
        Assert.Equal(expected, ConfigKeys.Closest(key, ["hidden_size", "steps", "num_res_blocks", "lr", "depth"]));

    /// <summary>Derived, [JsonIgnore]d properties (GridSize, ...) are not keys; the stored ones are.</summary>
    [Fact]
    public void KnownKeysAreTheStoredNames()
    {
        var keys = ConfigKeys.Of(typeof(Transformers.TransformerConfig));
        Assert.Contains("hidden_size", keys);
        Assert.DoesNotContain("GridSize", keys);
        Assert.Contains("downsample_factor", AutoencoderConfig.Keys);   // written by ToJson, so a stored config holds it
    }

    /// <summary>A file holding <paramref name="path"/>'s tensors with its config edited by <paramref name="edit"/> (and other metadata by <paramref name="meta"/>).</summary>
    string Edited(string path, Action<JsonObject> edit, Action<Dictionary<string, string>>? meta = null)
    {
        using var file = SafetensorsFile.Open(path);
        var m = file.Metadata.ToDictionary();
        var config = JsonNode.Parse(m[ModelCheckpoint.ConfigKey])!.AsObject();
        edit(config);
        m[ModelCheckpoint.ConfigKey] = config.ToJsonString();
        meta?.Invoke(m);
        string output = Path.Combine(_dir, $"edited-{Guid.NewGuid():N}.safetensors");
        var tensors = file.ReadAll();
        SafetensorsWriter.Write(output, tensors, m);
        foreach (var t in tensors.Values) t.Dispose();
        return output;
    }

    [Theory]
    [InlineData("sampling", "guidence", "did you mean 'guidance'?")]
    [InlineData("transformer.text", "max_token", "did you mean 'max_tokens'?")]
    public void AModelConfigSectionRefusesAnUnknownKey(string section, string key, string suggestion)
    {
        string model = TinyModels.SaveCheckpoint(_dir);
        string bad = Edited(model, c =>
        {
            if (section == "sampling") c["sampling"] = new JsonObject { ["sampler"] = "ddim", ["steps"] = 10, [key] = 2.0 };
            else c["transformer"]!["text"] = new JsonObject { [key] = 8 };
        });
        var r = CliTestHost.Run("sample", "--model", bad, "--out", Path.Combine(_dir, "out"), "--steps", "1", "--num", "1");
        CliExpect.UserError(r, $"the {section} config of '{bad}' has an unknown key '{key}' ({suggestion})");
    }

    static JsonObject SmallAutoencoder() => new()
    {
        ["ch"] = 32, ["ch_mult"] = new JsonArray(1, 2), ["num_res_blocks"] = 1, ["z_channels"] = 4, ["embed_dim"] = 4, ["resolution"] = 16,
    };

    [Fact]
    public void AnAutoencoderConfigFileRefusesAMisspelledKey()
    {
        var json = SmallAutoencoder();
        json["num_res_blocks"] = null;
        json.Remove("num_res_blocks");
        json["num_res_block"] = 2;
        string file = Path.Combine(_dir, "ae.json");
        File.WriteAllText(file, json.ToJsonString());
        var r = CliTestHost.Run("train-autoencoder", "--config", file, "--data", "shapes:count=8", "--steps", "1", "--out", Path.Combine(_dir, "ae"));
        CliExpect.UserError(r, $"the autoencoder config of '{file}' has an unknown key 'num_res_block' (did you mean 'num_res_blocks'?)");
        Assert.Empty(Directory.EnumerateFiles(_dir, "*", SearchOption.AllDirectories).Where(f => f != file));
    }

    [Fact]
    public void AnAutoencoderCheckpointRefusesAnUnknownKeyButReadsItsDerivedOnes()
    {
        string path = Path.Combine(_dir, "ae.safetensors");
        using (var ae = new AutoencoderKL(AutoencoderConfig.FromJson(SmallAutoencoder()))) ae.Save(path);
        using (var ok = AutoencoderKL.Load(path)) Assert.Equal(2, ok.Config.DownsampleFactor);
        string bad = Edited(path, c => c["dropuot"] = 0.1);
        var e = Assert.Throws<LdmException>(() => AutoencoderKL.Load(bad));
        Assert.StartsWith($"the autoencoder config of '{bad}' has an unknown key 'dropuot' (did you mean 'dropout'?)", e.Message);
    }

    /// <summary>The CompVis form (an LDM yaml's first_stage_config.params) keeps its extra keys, as the golden fixtures need.</summary>
    [Fact]
    public void CompVisDdconfigKeepsItsIgnoredExtraKeys()
    {
        var dd = SmallAutoencoder();
        dd.Remove("embed_dim");
        dd["attn_type"] = "vanilla";
        dd["give_pre_end"] = false;
        var config = AutoencoderConfig.FromJson(new JsonObject { ["ddconfig"] = dd, ["embed_dim"] = 4, ["lossconfig"] = new JsonObject { ["target"] = "x" } });
        Assert.Equal(4, config.EmbedDim);
        Assert.Equal(32, AutoencoderConfig.FromCompVis(dd, 4).Ch);
    }

    [Fact]
    public void AClassifierCheckpointRefusesAnUnknownKey()
    {
        string path = Path.Combine(_dir, "clf.safetensors");
        var config = new DomainClassifierConfig { Channels = 1, ImageSize = 28, ClassNames = ["a", "b"], Widths = [8, 8, 8], FeatureDim = 8 };
        using (var clf = DomainClassifierTrainer.Create(config, seed: 1)) clf.Save(path);
        using (DomainClassifier.Load(path)) { }
        string bad = Edited(path, c => { c.Remove("widths"); c["width"] = new JsonArray(8, 8, 8); });
        var e = Assert.Throws<LdmException>(() => DomainClassifier.Load(bad));
        Assert.StartsWith($"the classifier config of '{bad}' has an unknown key 'width' (did you mean 'widths'?)", e.Message);
    }

    [Fact]
    public void ARecipeRefusesAnUnknownKeyNamingTheRecipe()
    {
        string recipe = Path.Combine(_dir, "r.json");
        File.WriteAllText(recipe, """{ "train": { "data": "shapes:count=16", "stpes": 2, "no-learn-sigma": true } }""");
        var r = CliTestHost.Run("train", "--recipe", recipe, "--out", Path.Combine(_dir, "run"));
        CliExpect.UserError(r, $"recipe '{recipe}': \"train\" has an unknown key \"stpes\" (did you mean \"steps\"?)");
        // A misspelled false flag used to vanish without a word.
        File.WriteAllText(recipe, """{ "autoencoder": { "data": "shapes", "flipp": false }, "train": { "data": "shapes" } }""");
        CliExpect.UserError(CliTestHost.Run("train", "--recipe", recipe, "--out", Path.Combine(_dir, "run")), "\"autoencoder\" has an unknown key \"flipp\" (did you mean \"flip\"?)");
        Assert.False(Directory.Exists(Path.Combine(_dir, "run")));
    }

    [Fact]
    public void ACheckpointOfANewerFormatIsRefusedWithUpdate()
    {
        string newer = Edited(TinyModels.SaveCheckpoint(_dir), _ => { }, m => m[ModelCheckpoint.FormatKey] = "ldm-checkpoint/2");
        var r = CliTestHost.Run("sample", "--model", newer, "--out", Path.Combine(_dir, "out"), "--steps", "1", "--num", "1");
        CliExpect.UserError(r, $"'{newer}' was made by a newer ldm (file format ldm-checkpoint/2; this one reads up to ldm-checkpoint/1); update ldm");
    }
}
