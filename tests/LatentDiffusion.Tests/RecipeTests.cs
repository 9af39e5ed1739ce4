using System.Text.Json.Nodes;
using LatentDiffusion.Denoisers;
using LatentDiffusion.Cli;
using LatentDiffusion.IO;
using LatentDiffusion.Training;
using LatentDiffusion.Transformers;
using Xunit;

namespace LatentDiffusion.Tests;

/// <summary>`ldm train --recipe`: an autoencoder, then a latent-space Transformer trained on its latents, in one command.</summary>
[Collection(ConsoleCollection.Name)]
public class RecipeTests
{
    static string WriteRecipe(string dir, int aeSteps = 2)
    {
        var recipe = new JsonObject
        {
            ["description"] = "test: a tiny latent shapes model",
            ["autoencoder"] = new JsonObject
            {
                ["data"] = "shapes:count=48", ["config"] = "f4-32-small", ["steps"] = aeSteps, ["batch-size"] = 4,
                ["sample-every"] = 1000, ["checkpoint-every"] = 1000,
            },
            ["train"] = new JsonObject
            {
                ["data"] = "shapes:count=48", ["preset"] = "S/2", ["hidden-size"] = 32, ["depth"] = 1, ["num-heads"] = 2,
                ["no-learn-sigma"] = true, ["prediction"] = "v", ["steps"] = 2, ["batch-size"] = 4, ["dtype"] = "float32", ["log-every"] = 1,
            },
        };
        string path = Path.Combine(dir, "tiny.json");
        File.WriteAllText(path, recipe.ToJsonString());
        return path;
    }

    [Fact]
    public void RecipeTrainsTheAutoencoderThenALatentModelThatSamplesToPngsOnItsOwn()
    {
        using var _ = new SingleTorchThread();
        string dir = RepoPaths.NewTempDir("recipe"), run = Path.Combine(dir, "run"), samples = Path.Combine(dir, "samples");
        string recipe = WriteRecipe(dir);
        var result = CliTestHost.Run("train", "--recipe", recipe, "--out", run, "--steps", "3");
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("recipe: ldm train-autoencoder", result.Stdout);
        Assert.True(File.Exists(Path.Combine(run, "autoencoder", "autoencoder.safetensors")));
        Assert.True(File.Exists(Path.Combine(run, "latents", "index.json")));
        Assert.True(File.Exists(Path.Combine(run, "loss.png")));
        string model = Path.Combine(run, DiffusionTrainer.ModelFile);
        var info = DenoiserCheckpoint.PeekInfo(model);
        Assert.Equal(DataSpace.Latent, info.Space);
        Assert.Equal("autoencoder.safetensors", info.Autoencoder);
        Assert.True(File.Exists(Path.Combine(run, "autoencoder.safetensors")), "the autoencoder is copied beside the model");
        Assert.Equal((4, 8, 2), (info.Transformer.InChannels, info.Transformer.InputSize, info.Transformer.PatchSize));
        Assert.True(info.Diffusion.PredictV);
        // The command line overrides the recipe: 3 steps, not 2.
        Assert.Equal(3, File.ReadLines(Path.Combine(run, DiffusionTrainer.MetricsFile)).Count(l => l.Contains("\"step\"")));

        // Sampling needs no --autoencoder: the model names the one beside it.
        var sample = CliTestHost.Run("sample", "--model", model, "--classes", "0,5", "--num", "2", "--steps", "2", "--out", samples);
        Assert.True(sample.ExitCode == 0, sample.ToString());
        Assert.Contains("decoded by the autoencoder", sample.Stdout);
        Assert.True(File.Exists(Path.Combine(samples, "grid.png")));

        // Exported into a models folder: the model names the autoencoder copied beside it, bf16 storage halves the file.
        string shipped = Path.Combine(dir, "models", "tiny.safetensors");
        var export = CliTestHost.Run("export", "--model", model, "--out", shipped, "--dtype", "bf16");
        Assert.True(export.ExitCode == 0, export.ToString());
        Assert.Equal("tiny-autoencoder.safetensors", DenoiserCheckpoint.PeekInfo(shipped).Autoencoder);
        Assert.True(File.Exists(Path.Combine(dir, "models", "tiny-autoencoder.safetensors")));
        Assert.True(new FileInfo(shipped).Length < new FileInfo(model).Length * 0.6);
        var fromShipped = CliTestHost.Run("sample", "--model", shipped, "--classes", "1", "--num", "1", "--steps", "2", "--out", Path.Combine(dir, "s2"));
        Assert.True(fromShipped.ExitCode == 0, fromShipped.ToString());
        Assert.Contains("decoded by the autoencoder", fromShipped.Stdout);

        // A second run finds the finished autoencoder and the finished model: nothing is trained again.
        var again = CliTestHost.Run("train", "--recipe", recipe, "--out", run, "--steps", "3");
        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.DoesNotContain("train-autoencoder", again.Stdout);
    }

    [Fact]
    public void UnknownRecipesAndBadRecipeFilesAreOneLineErrors()
    {
        string dir = RepoPaths.NewTempDir("recipe-bad");
        var missing = CliTestHost.Run("train", "--recipe", "no-such-recipe", "--out", Path.Combine(dir, "r"));
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("shapes-class", missing.Stderr);
        string bad = Path.Combine(dir, "bad.json");
        File.WriteAllText(bad, "{ \"train\": { \"steps\": [1, 2] } }");
        var badValue = CliTestHost.Run("train", "--recipe", bad, "--out", Path.Combine(dir, "r"));
        Assert.Equal(1, badValue.ExitCode);
        Assert.Contains("\"steps\"", badValue.Stderr);
        var noOut = CliTestHost.Run("train", "--recipe", "shapes-class");
        Assert.Equal(1, noOut.ExitCode);
        Assert.Contains("--out", noOut.Stderr);
    }

    [Theory]
    [InlineData("shapes-class")]
    [InlineData("shapes-text")]
    [InlineData("fashion-mnist")]
    [InlineData("emoji-text")]
    public void ShippedRecipesExpandIntoValidCommands(string name)
    {
        string run = Path.Combine(RepoPaths.NewTempDir("recipe-expand"), "run");
        var root = LdmApp.BuildRoot();
        // With the root, every key of the recipe is checked against the options of its commands.
        var stages = Recipe.Expand(["train", "--recipe", name, "--out", run], root)!;
        Assert.Equal("train", stages[^1][0]);
        foreach (var stage in stages)
        {
            var parse = root.Parse(stage);
            Assert.True(parse.Errors.Count == 0, $"{string.Join(' ', stage)}: {string.Join("; ", parse.Errors.Select(e => e.Message))}");
        }
    }
}
