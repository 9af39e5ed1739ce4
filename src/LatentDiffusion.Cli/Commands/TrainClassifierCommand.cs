using System.CommandLine;
using LatentDiffusion.Data;
using LatentDiffusion.Diagnostics;
using LatentDiffusion.Evaluation;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Cli.Commands;

/// <summary>`ldm train-classifier`: trains the domain classifier whose features and predictions `ldm evaluate` uses.</summary>
public static class TrainClassifierCommand
{
    public static Command Create()
    {
        var data = new Option<string>("--data") { Description = "fashion-mnist (Debian's /usr/share/datasets/fashion-mnist), shapes (the built-in set), or a folder with one sub-folder per class", DefaultValueFactory = _ => "fashion-mnist" };
        var fashionDir = new Option<string>("--fashion-mnist-dir") { Description = "folder of the Fashion-MNIST IDX files", DefaultValueFactory = _ => FashionMnist.DefaultFolder };
        var imageSize = new Option<int>("--image-size") { Description = "image side for a folder data set (28, 32 or 64)", DefaultValueFactory = _ => 32 };
        var channels = new Option<int>("--channels") { Description = "1 (gray) or 3 (RGB) for a folder data set", DefaultValueFactory = _ => 3 };
        var testFraction = new Option<double>("--test-fraction") { Description = "share of a folder data set held out for the test accuracy", DefaultValueFactory = _ => 0.1 };
        var epochs = new Option<int>("--epochs") { DefaultValueFactory = _ => 5 };
        var batch = new Option<int>("--batch-size") { DefaultValueFactory = _ => 256 };
        var lr = new Option<double>("--lr") { Description = "peak AdamW learning rate (cosine decay)", DefaultValueFactory = _ => 3e-3 };
        var seed = new Option<long>("--seed") { DefaultValueFactory = _ => 0 };
        var noAugment = new Option<bool>("--no-augment") { Description = "train without random flips and shifts" };
        var threads = new Option<int>("--threads") { Description = "CPU threads (0: all)", DefaultValueFactory = _ => 0 };
        var output = new Option<string>("--out") { Description = "classifier checkpoint to write (.safetensors)", DefaultValueFactory = _ => "classifier.safetensors" };

        var command = new Command("train-classifier", "Train the small domain classifier used for classifier-feature FID and sample accuracy.")
        { data, fashionDir, imageSize, channels, testFraction, epochs, batch, lr, seed, noAugment, threads, output };
        command.SetAction(r =>
        {
            if (r.GetValue(threads) is > 0 and var t) torch.set_num_threads(t);
            long s = r.GetValue(seed);
            var (train, test) = LoadData(r.GetValue(data)!, r.GetValue(fashionDir)!, r.GetValue(imageSize), r.GetValue(channels), r.GetValue(testFraction), s);
            using (train) using (test)
            {
                if (!train.HasLabels || train.NumClasses < 2)
                    throw new LdmException($"'{train.Source}' has no class labels; the classifier needs a labelled data set (one sub-folder per class).");
                var config = new DomainClassifierConfig { Channels = train.Channels, ImageSize = train.ImageSize, ClassNames = train.ClassNames.ToArray() };
                using var model = DomainClassifierTrainer.Create(config, s);
                var options = new ClassifierTrainingOptions
                {
                    Epochs = r.GetValue(epochs), BatchSize = r.GetValue(batch), LearningRate = r.GetValue(lr), Seed = s, Augment = !r.GetValue(noAugment),
                };
                AnsiConsole.MarkupLineInterpolated($"training on [bold]{train.Count}[/] images of {train.Source} ({config.NumClasses} classes, {config.Channels}x{config.ImageSize}x{config.ImageSize}), testing on {test.Count}; batch {options.BatchSize}, {torch.get_num_threads()} threads{(NativeRuntime.Applied.Length > 0 ? "; " + NativeRuntime.Applied : "")}");
                var sw = System.Diagnostics.Stopwatch.StartNew();
                if (Console.IsOutputRedirected)
                {
                    // Logs get one line per epoch instead of a redrawn progress bar.
                    DomainClassifierTrainer.Train(model, train.Images, train.Labels, options, (epoch, step, steps, loss) =>
                    {
                        if (step == steps) Console.WriteLine($"epoch {epoch + 1}/{options.Epochs}: loss {loss:F4} ({sw.Elapsed.TotalSeconds:F0} s)");
                    });
                }
                else
                {
                    AnsiConsole.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                        .Start(ctx =>
                        {
                            var tasks = Enumerable.Range(1, options.Epochs).Select(e => ctx.AddTask($"epoch {e}/{options.Epochs}", autoStart: false)).ToList();
                            DomainClassifierTrainer.Train(model, train.Images, train.Labels, options, (epoch, step, steps, loss) =>
                            {
                                var task = tasks[epoch];
                                if (!task.IsStarted) task.StartTask();
                                task.MaxValue = steps;
                                task.Value = step;
                                task.Description = $"epoch {epoch + 1}/{options.Epochs} loss {loss:F4}";
                            });
                        });
                }
                double accuracy = DomainClassifierTrainer.Accuracy(model, test.Images, test.Labels);
                string outPath = r.GetValue(output)!;
                model.Save(outPath, new Dictionary<string, string>
                {
                    ["ldm.test_accuracy"] = accuracy.ToString("R", System.Globalization.CultureInfo.InvariantCulture),
                    ["ldm.trained_on"] = train.Source,
                });
                Console.WriteLine($"test accuracy: {accuracy:P2} ({test.Count} images), trained in {sw.Elapsed.TotalSeconds:F0} s; saved {outPath}");
            }
            return 0;
        });
        return command;
    }

    static (ImageDataset train, ImageDataset test) LoadData(string data, string fashionDir, int size, int channels, double testFraction, long seed)
    {
        if (data == "fashion-mnist")
            return (FashionMnist.Load(fashionDir, train: true), FashionMnist.Load(fashionDir, train: false));
        if (data == "shapes")
            return (ShapesDataset.Generate(12000, (int)seed * 2 + 1, text: false), ShapesDataset.Generate(2000, (int)seed * 2 + 2, text: false));
        if (!Directory.Exists(data))
            throw new LdmException($"--data '{data}' is neither fashion-mnist, shapes nor an existing folder; pass one of those.");
        if (testFraction is <= 0 or >= 1) throw new LdmException($"--test-fraction must be in (0, 1), got {testFraction}.");
        var all = ImageFolderDataset.Load(data, size, channels);
        using var g = new Generator((ulong)seed);
        using var perm = torch.randperm(all.Count, generator: g);
        long nTest = Math.Max(1, (long)(all.Count * testFraction));
        var idx = perm.data<long>().ToArray();
        var test = all.Subset(idx[..(int)nTest]);
        var train = all.Subset(idx[(int)nTest..]);
        all.Dispose();
        return (train, test);
    }
}
