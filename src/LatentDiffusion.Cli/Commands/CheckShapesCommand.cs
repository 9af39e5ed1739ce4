using System.CommandLine;
using System.Text.Json;
using LatentDiffusion.Evaluation;
using LatentDiffusion.IO;
using LatentDiffusion.Pipelines;
using LatentDiffusion.Diffusion;
using Spectre.Console;

namespace LatentDiffusion.Cli.Commands;

/// <summary>`ldm check-shapes`: how often a shapes model draws what it is asked (the pixel checker of the test suite).</summary>
public static class CheckShapesCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model", "-m") { Description = "A class or text model of the shapes data (latent models find their autoencoder beside them).", Required = true };
        var autoencoder = new Option<string?>("--autoencoder", "-a") { Description = "Latent models: the autoencoder (default: the one the model names, beside it)." };
        var count = new Option<int>("--num", "-n") { Description = "Class models: samples per class; text models: one-shape and two-shape prompts each.", DefaultValueFactory = _ => 20 };
        var steps = new Option<int?>("--steps") { Description = "Sampling steps (default: the model's recommended)." };
        var guidance = new Option<double?>("--guidance", "-g") { Description = "Classifier-free guidance scale (default: the model's recommended)." };
        var seed = new Option<long>("--seed") { DefaultValueFactory = _ => 0 };
        var output = new Option<string?>("--out") { Description = "Also write the result as JSON here." };
        var command = new Command("check-shapes", "Sample a shapes model and read its images back: kind, colour (and for text models size and position) right, in percent.")
        { model, autoencoder, count, steps, guidance, seed, output };
        command.SetAction(p =>
        {
            string path = CliParsing.ExistingFile(p.GetValue(model)!, "--model");
            string? aePath = p.GetValue(autoencoder) is { } a ? CliParsing.ExistingFile(a, "--autoencoder") : null;
            using var pipe = DiffusionPipeline.Load(path, autoencoderPath: aePath);
            {
                var d = pipe.DefaultOptions;
                var options = d with { Steps = p.GetValue(steps) ?? d.Steps, GuidanceScale = p.GetValue(guidance) ?? d.GuidanceScale, Seed = p.GetValue(seed), BatchSize = 64 };
                options.Validate();
                var result = ShapesEvaluation.Run(pipe, p.GetValue(count), options);
                var table = new Table().AddColumn("measure").AddColumn("value");
                table.AddRow("model", Markup.Escape(path));
                table.AddRow("images", result.Images.ToString());
                table.AddRow(result.Condition == "class" ? "kind and colour right" : "one-shape prompts right (kind, colour, size, position)", $"{100 * result.Accuracy:F1} %");
                if (result.TwoShapeAccuracy is { } two) table.AddRow("two-shape prompts right", $"{100 * two:F1} %");
                if (result.Condition == "text") table.AddRow("one-shape prompts, kind and colour right", $"{100 * result.KindAndColourAccuracy:F1} %");
                foreach (var (group, acc) in result.PerGroup) table.AddRow(Markup.Escape(group), $"{100 * acc:F0} %");
                table.AddRow("sampling", $"{Samplers.Name(options.Sampler)} {options.Steps} steps, guidance {options.GuidanceScale}, seed {options.Seed}, {result.Seconds:F1} s");
                AnsiConsole.Write(table);
                if (p.GetValue(output) is { } outPath)
                    AtomicFile.WriteAllText(outPath, JsonSerializer.Serialize(result, new JsonSerializerOptions { WriteIndented = true }));
            }
            return 0;
        });
        return command;
    }
}
