using System.CommandLine;
using LatentDiffusion.Autoencoders;
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
        var data = new Option<string>("--data") { Description = DataSpec.Help, DefaultValueFactory = _ => "shapes" };
        var count = new Option<int>("--data-count") { Description = "Images to generate for the shapes data sets.", DefaultValueFactory = _ => 10_000 };
        var seed = new Option<int>("--seed") { Description = "Seed of generated data sets.", DefaultValueFactory = _ => 0 };
        var output = new Option<string>("--out", "-o") { Description = "Cache folder.", Required = true };
        var flip = new Option<bool>("--flip") { Description = "Also cache the left-right mirror image of every image." };
        var batch = new Option<int>("--batch-size") { DefaultValueFactory = _ => 64 };
        var threads = new Option<int?>("--threads") { Description = "CPU threads for torch (default: all cores)." };
        var command = new Command("encode", "Encode a data set into a latent cache for diffusion training.")
        {
            autoencoder, data, count, seed, output, flip, batch, threads,
        };
        command.SetAction(p =>
        {
            if (p.GetValue(threads) is int t) torch.set_num_threads(Math.Max(1, t));
            using var ae = AutoencoderKL.Load(p.GetValue(autoencoder)!);
            using var dataset = DataSpec.Load(p.GetValue(data)!, p.GetValue(count), p.GetValue(seed), ae.Config.Resolution, ae.Config.InChannels);
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
