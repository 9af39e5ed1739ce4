using System.CommandLine;
using LatentDiffusion.Autoencoders;
using LatentDiffusion.Cli.Grammar;
using LatentDiffusion.Training;
using Spectre.Console;
using TorchSharp;

namespace LatentDiffusion.Cli.Commands;

/// <summary>`ldm train-autoencoder`: trains a KL autoencoder (L1 + KL, optional PatchGAN) that resumes automatically from a checkpoint in its --out folder.</summary>
public static class TrainAutoencoderCommand
{
    public static Command Create()
    {
        var data = CommonOptions.Data("Training images", "shapes");
        var count = CommonOptions.Deprecated<int>("--data-count");
        var size = new Option<int>("--image-size") { Description = "Image side for image folders.", DefaultValueFactory = _ => 32 };
        var config = new Option<string>("--config") { Description = $"Autoencoder preset ({string.Join(", ", AutoencoderConfig.PresetNames)}) or JSON config file.", DefaultValueFactory = _ => "f4-32" };
        var output = CommonOptions.Out("Run folder (training state, autoencoder.safetensors, metrics, grids).", "runs/autoencoder");
        var d = new AutoencoderTrainingOptions();
        var steps = new Option<int>("--steps") { DefaultValueFactory = _ => d.Steps };
        var batch = new Option<int>("--batch-size") { DefaultValueFactory = _ => d.BatchSize };
        var lr = new Option<double>("--lr") { DefaultValueFactory = _ => d.LearningRate };
        var kl = new Option<double>("--kl-weight") { DefaultValueFactory = _ => d.KlWeight };
        var discStart = new Option<int?>("--disc-start") { Description = "Step at which the PatchGAN discriminator starts (default: no GAN)." };
        var discWeight = new Option<double>("--disc-weight") { DefaultValueFactory = _ => d.DiscriminatorWeight };
        var ema = new Option<double>("--ema-decay") { DefaultValueFactory = _ => d.EmaDecay };
        var flip = new Option<bool>("--flip") { Description = "Random horizontal flips." };
        var seed = CommonOptions.Seed("initial weights, data order, generated shapes");
        var ckptEvery = new Option<int>("--checkpoint-every") { DefaultValueFactory = _ => d.CheckpointEvery };
        var sampleEvery = new Option<int>("--sample-every") { DefaultValueFactory = _ => d.SampleEvery };
        var allowChanged = TrainCommand.AllowChangedSettingsOption();
        var runtime = CommonOptions.Runtime();
        var command = new Command("train-autoencoder", "Train a KL autoencoder (the first stage of latent diffusion) on an image data set.")
        {
            data, count, size, config, output, steps, batch, lr, kl, discStart, discWeight, ema, flip, seed, ckptEvery, sampleEvery, allowChanged,
        };
        foreach (var o in runtime.All) command.Options.Add(o);
        command.SetAction(p =>
        {
            var spec = DataSetSpec.Parse(p.GetValue(data), "--data").Require("--data", "images (a built-in set or an image folder)",
                DataSetKind.Shapes, DataSetKind.ShapesText, DataSetKind.FashionMnist, DataSetKind.ImageFolder, DataSetKind.CaptionedFolder);
            if (CommonOptions.ReadDeprecated(p, count, $"--data {spec.Text.Split(':')[0]}:count={{}}", out int n) && spec.IsShapes && spec.Count is null)
                spec = spec with { Count = n };
            var device = runtime.Apply(p);
            // A run that fails before it trains (unreadable data, a late option error) leaves no folder it created.
            return RunFolderGuard.Run(p.GetValue(output)!, () =>
            {
                string runDir = CliParsing.OutputFolder(p.GetValue(output)!, "--out");
                var aeConfig = AutoencoderConfig.FromPresetOrFile(p.GetValue(config)!);
                using var dataset = DataSetLoader.Load(spec, 10_000, p.GetValue(seed), p.GetValue(size), aeConfig.InChannels);
                var trainer = new AutoencoderTrainer(aeConfig, dataset, new AutoencoderTrainingOptions
                    {
                        Steps = p.GetValue(steps), BatchSize = p.GetValue(batch), LearningRate = p.GetValue(lr), KlWeight = p.GetValue(kl),
                        DiscriminatorStart = p.GetValue(discStart), DiscriminatorWeight = p.GetValue(discWeight), EmaDecay = p.GetValue(ema),
                        HorizontalFlip = p.GetValue(flip), Seed = (int)p.GetValue(seed), CheckpointEvery = p.GetValue(ckptEvery), SampleEvery = p.GetValue(sampleEvery),
                        AllowChangedSettings = p.GetValue(allowChanged),
                    }, runDir, device);
                using (trainer)
                {
                    if (trainer.IsFinished)
                    {
                        Console.WriteLine($"{runDir} is already finished at step {trainer.Step}; pass a larger --steps to continue it");
                        return 0;
                    }
                    if (trainer.ResumedFromStep is long from) Console.WriteLine($"resuming {runDir} at step {from}");
                    if (TrainCommand.ChangedSettingsNote(trainer.ChangedSettings) is { } note) Console.WriteLine(note);
                    AnsiConsole.MarkupLine($"[bold]train-autoencoder[/]: {dataset.Count:N0} images ({Markup.Escape(dataset.Source)}), f={trainer.Model.Config.DownsampleFactor}, {trainer.Model.parameters().Sum(x => x.NumberOfElements):N0} parameters, from step {trainer.Step} to {trainer.Options.Steps}, run folder {Markup.Escape(runDir)}");
                    var started = DateTime.UtcNow;
                    AutoencoderStepResult? last = null;
                    AnsiConsole.Progress()
                        .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
                        .Start(ctx =>
                        {
                            var task = ctx.AddTask("training", maxValue: trainer.Options.Steps);
                            task.Value = trainer.Step;
                            try
                            {
                                last = trainer.Run(r =>
                                {
                                    task.Value = r.Step;
                                    task.Description = $"step {r.Step} L1 {r.L1:F4} KL {r.Kl:F1}" + (r.DiscriminatorLoss > 0 ? $" D {r.DiscriminatorLoss:F3}" : "");
                                });
                            }
                            catch (TrainingDivergedException e) { throw new LdmException(e.WithAdvice("Lower --lr."), e); }
                        });
                    var (l1, psnr) = AutoencoderEvaluation.Reconstruction(trainer.Ema, dataset, 512);
                    AnsiConsole.MarkupLine($"done in {(DateTime.UtcNow - started).TotalMinutes:F1} min: EMA reconstruction on the first {Math.Min(512, dataset.Count)} images: L1 {l1:F4}, PSNR {psnr:F2} dB (pixels in [[0, 1]]); latent scale {trainer.Ema.LatentScale:G6}");
                    AnsiConsole.MarkupLine($"model: {Markup.Escape(Path.Combine(runDir, AutoencoderTrainer.ModelFile))}");
                }
                return 0;
            });
        });
        return command;
    }
}
