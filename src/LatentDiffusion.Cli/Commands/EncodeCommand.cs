using System.CommandLine;
using LatentDiffusion.Autoencoders;
using LatentDiffusion.Cli.Grammar;
using LatentDiffusion.Data;
using Spectre.Console;
using TorchSharp;

namespace LatentDiffusion.Cli.Commands;

/// <summary>`ldm encode`: encodes a data set once into a latent cache (posterior means and stds, labels, captions).</summary>
public static class EncodeCommand
{
    public static Command Create()
    {
        var autoencoder = new Option<string>("--autoencoder", "-a") { Description = "Autoencoder checkpoint (ldm format; see ldm convert / train-autoencoder).", Required = true };
        var data = CommonOptions.Data("Images to encode", "shapes");
        var count = CommonOptions.Deprecated<int>("--data-count");
        var seed = CommonOptions.Seed("generated shapes");
        var output = CommonOptions.Out("Cache folder.");
        var flip = new Option<bool>("--flip") { Description = "Also cache the left-right mirror image of every image." };
        var batch = new Option<int>("--batch-size") { DefaultValueFactory = _ => 64 };
        var runtime = CommonOptions.Runtime();
        var command = new Command("encode", "Encode a data set into a latent cache for diffusion training.")
        {
            autoencoder, data, count, seed, output, flip, batch,
        };
        foreach (var o in runtime.All) command.Options.Add(o);
        command.SetAction(p =>
        {
            var spec = DataSetSpec.Parse(p.GetValue(data), "--data").Require("--data", "images (a built-in set or an image folder)",
                DataSetKind.Shapes, DataSetKind.ShapesText, DataSetKind.FashionMnist, DataSetKind.ImageFolder, DataSetKind.CaptionedFolder);
            if (CommonOptions.ReadDeprecated(p, count, $"--data {spec.Text.Split(':')[0]}:count={{}}", out int n) && spec.IsShapes && spec.Count is null)
                spec = spec with { Count = n };
            var device = runtime.Apply(p);
            using var ae = AutoencoderKL.Load(CliParsing.ExistingFile(p.GetValue(autoencoder)!, "--autoencoder"));
            ae.to(device);
            using var dataset = DataSetLoader.Load(spec, 10_000, p.GetValue(seed), ae.Config.Resolution, ae.Config.InChannels);
            string dir = p.GetValue(output)!;
            long written = 0;
            double rate = 0;
            AnsiConsole.Progress()
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                .Start(ctx =>
                {
                    var task = ctx.AddTask("encoding", maxValue: p.GetValue(flip) ? 2 * dataset.Count : dataset.Count);
                    written = LatentCache.Write(dir, ae, dataset, p.GetValue(flip), p.GetValue(batch), progress: pr =>
                    {
                        task.Value = pr.Done;
                        rate = pr.ImagesPerSecond;
                        task.Description = $"encoding ({pr.ImagesPerSecond:F1} images/s)";
                    }, autoencoderSource: p.GetValue(autoencoder)!);
                });
            using var cache = LatentCache.Open(dir);
            AnsiConsole.MarkupLine($"wrote {written:N0} latents of shape ({string.Join(", ", cache.LatentShape)}) to {Markup.Escape(dir)} at {rate:F1} images/s; latent scale {cache.LatentScale:G6}");
            return 0;
        });
        return command;
    }
}
