using System.CommandLine;
using LatentDiffusion.Cli.Grammar;
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
        var data = CommonOptions.Data("Labelled training images (fashion-mnist tests on its test split, shapes on another seed, a folder on --test-fraction of it)", "fashion-mnist");
        var imageSize = new Option<int>("--image-size") { Description = "image side for a folder data set (28, 32 or 64)", DefaultValueFactory = _ => 32 };
        var channels = new Option<int>("--channels") { Description = "1 (gray) or 3 (RGB) for a folder data set", DefaultValueFactory = _ => 3 };
        var testFraction = new Option<double>("--test-fraction") { Description = "share of a folder data set held out for the test accuracy", DefaultValueFactory = _ => 0.1 };
        var epochs = new Option<int>("--epochs") { DefaultValueFactory = _ => 5 };
        var batch = new Option<int>("--batch-size") { DefaultValueFactory = _ => 256 };
        var lr = new Option<double>("--lr") { Description = "peak AdamW learning rate (cosine decay)", DefaultValueFactory = _ => 3e-3 };
        var seed = CommonOptions.Seed("initial weights, data order, augmentation, test split");
        var noAugment = new Option<bool>("--no-augment") { Description = "train without random flips and shifts" };
        var runtime = CommonOptions.Runtime();
        var output = CommonOptions.Out("Classifier checkpoint to write (.safetensors).", "classifier.safetensors");

        var command = new Command("train-classifier", "Train the small domain classifier used for classifier-feature FID and sample accuracy.")
        { data, imageSize, channels, testFraction, epochs, batch, lr, seed, noAugment, output };
        foreach (var o in runtime.All) command.Options.Add(o);
        command.SetAction(r =>
        {
            var spec = DataSetSpec.Parse(r.GetValue(data), "--data").Require("--data", "labelled images (shapes, fashion-mnist or a folder with one subfolder per class)",
                DataSetKind.Shapes, DataSetKind.FashionMnist, DataSetKind.ImageFolder);
            var device = runtime.Apply(r);
            long s = r.GetValue(seed);
            var (train, test) = LoadData(spec, r.GetValue(imageSize), r.GetValue(channels), r.GetValue(testFraction), s);
            using (train) using (test)
            {
                if (!train.HasLabels || train.NumClasses < 2)
                    throw new LdmException($"'{train.Source}' has no class labels; the classifier needs a labelled data set (one sub-folder per class).");
                var config = new DomainClassifierConfig { Channels = train.Channels, ImageSize = train.ImageSize, ClassNames = train.ClassNames.ToArray() };
                using var model = DomainClassifierTrainer.Create(config, s);
                model.to(device);
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

    /// <summary>The training set the spec names and a test set beside it: Fashion-MNIST's other split, shapes of another
    /// seed, or a held-out share of a folder.</summary>
    static (ImageDataset train, ImageDataset test) LoadData(DataSetSpec spec, int size, int channels, double testFraction, long seed)
    {
        if (spec.Kind == DataSetKind.FashionMnist)
            return (FashionMnist.Load(spec.FashionMnistFolder, spec.Train), FashionMnist.Load(spec.FashionMnistFolder, !spec.Train));
        if (spec.Kind == DataSetKind.Shapes)
        {
            int shapesSeed = spec.Seed ?? (int)seed * 2 + 1;
            return (ShapesDataset.Generate(spec.Count ?? 12000, shapesSeed, text: false), ShapesDataset.Generate(2000, shapesSeed + 1, text: false));
        }
        if (testFraction is <= 0 or >= 1) throw new LdmException($"--test-fraction must be in (0, 1), got {testFraction}.");
        var all = ImageFolderDataset.Load(spec.Path!, size, channels);
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
