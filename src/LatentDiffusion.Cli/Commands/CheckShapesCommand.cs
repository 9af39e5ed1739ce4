using System.CommandLine;
using System.Text.Json;
using LatentDiffusion.Cli.Grammar;
using LatentDiffusion.Data;
using LatentDiffusion.Denoisers;
using LatentDiffusion.Evaluation;
using LatentDiffusion.IO;
using LatentDiffusion.Pipelines;
using LatentDiffusion.Diffusion;
using Spectre.Console;

namespace LatentDiffusion.Cli.Commands;

/// <summary>`ldm check-shapes`: how often a shapes model draws what it is asked (the pixel checker of the test suite).</summary>
public static class CheckShapesCommand
{
    /// <summary>Samples per class (class models) or per prompt kind (text models) without --num.</summary>
    const int DefaultPerGroup = 20;

    public static Command Create()
    {
        var model = CommonOptions.Model("A class or text model of the shapes data (latent models find their autoencoder beside them).");
        var autoencoder = new Option<string?>("--autoencoder", "-a") { Description = "Latent models: the autoencoder (default: the one the model names, beside it)." };
        var count = CommonOptions.Num($"{DefaultPerGroup} per class for class models, {DefaultPerGroup} one-shape and {DefaultPerGroup} two-shape prompts for text models; rounded up to the same number in each");
        var steps = new Option<int?>("--steps") { Description = "Sampling steps (default: the model's recommended)." };
        var sampler = CommonOptions.Sampler(defaultValue: null, note: "default: the model's recommended");
        var dtype = CommonOptions.ComputeDtype("Compute dtype of the denoiser", TorchSharp.torch.ScalarType.Float32, TorchSharp.torch.ScalarType.BFloat16, TorchSharp.torch.ScalarType.Float16);
        var guidance = new Option<double?>("--guidance", "-g") { Description = "Classifier-free guidance scale (default: the model's recommended)." };
        var seed = CommonOptions.Seed("noise");
        var output = CommonOptions.NotEmpty(new Option<string?>("--out", "-o") { Description = "Also write the result as JSON here." }, "the path of the JSON file");
        var runtime = CommonOptions.Runtime();
        var command = new Command("check-shapes", "Sample a shapes model and read its images back: kind, colour (and for text models size and position) right, in percent.")
        { model, autoencoder, count, steps, sampler, dtype, guidance, seed, output };
        foreach (var o in runtime.All) command.Options.Add(o);
        command.SetAction(p =>
        {
            var device = runtime.Apply(p);
            string path = CliParsing.ExistingFile(p.GetValue(model)!, "--model");
            var info = DenoiserCheckpoint.PeekInfo(path);
            // --num is the total; the checker draws the same number per class (class models) or per prompt kind (text models).
            int groups = info.Condition == ConditionKind.Text ? 2 : ShapesDataset.NumClasses;
            int total = p.GetValue(count) ?? DefaultPerGroup * groups;
            if (total < 1) throw new LdmException($"--num must be at least 1, got {total}.");
            int perGroup = (total + groups - 1) / groups;
            // Settings not given come from the model's recommended sampling (stored in its checkpoint).
            var given = info.SamplingOrDefault.With(SamplerNames.ParseOptional(p.GetValue(sampler)), p.GetValue(steps), p.GetValue(guidance));
            var options = SamplingOptions.From(given) with
            {
                Seed = p.GetValue(seed),
                BatchSize = 64,
            };
            options.Validate();
            string? aePath = p.GetValue(autoencoder) is { } a ? CliParsing.ExistingFile(a, "--autoencoder") : null;
            using var pipe = DiffusionPipeline.Load(path, device,
                DtypeNames.ParseCompute(p.GetValue(dtype), TorchSharp.torch.ScalarType.Float32, TorchSharp.torch.ScalarType.BFloat16, TorchSharp.torch.ScalarType.Float16), aePath);
            {
                var result = ShapesEvaluation.Run(pipe, perGroup, options);
                var table = new Table().AddColumn("measure").AddColumn("value");
                table.AddRow("model", Markup.Escape(path));
                table.AddRow("images", result.Images.ToString());
                table.AddRow(result.Condition == "class" ? "kind and colour right" : "one-shape prompts right (kind, colour, size, position)", $"{100 * result.Accuracy:F1} %");
                if (result.TwoShapeAccuracy is { } two) table.AddRow("two-shape prompts right", $"{100 * two:F1} %");
                if (result.Condition == "text") table.AddRow("one-shape prompts, kind and colour right", $"{100 * result.KindAndColourAccuracy:F1} %");
                foreach (var (group, acc) in result.PerGroup) table.AddRow(Markup.Escape(group), $"{100 * acc:F0} %");
                if (result.ReconstructionAccuracy is { } ceiling)
                    table.AddRow(result.Condition == "class" ? "the autoencoder alone: reconstructions right" : "the autoencoder alone: one-shape scenes right", $"{100 * ceiling:F1} %");
                if (result.ReconstructionTwoShapeAccuracy is { } twoCeiling)
                    table.AddRow("the autoencoder alone: two-shape scenes right", $"{100 * twoCeiling:F1} %");
                table.AddRow("sampling", $"{SamplerNames.Of(options.Sampler)} {options.Steps} steps, guidance {options.GuidanceScale}, seed {options.Seed}, {result.Seconds:F1} s");
                AnsiConsole.Write(table);
                if (p.GetValue(output) is { } outPath)
                    AtomicFile.WriteAllText(outPath, JsonSerializer.Serialize(result, new JsonSerializerOptions { WriteIndented = true }));
            }
            return 0;
        });
        return command;
    }
}
