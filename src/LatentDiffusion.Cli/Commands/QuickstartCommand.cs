using System.CommandLine;
using LatentDiffusion.Data;
using LatentDiffusion.IO;
using LatentDiffusion.Pipelines;
using LatentDiffusion.Training;
using LatentDiffusion.Transformers;

namespace LatentDiffusion.Cli.Commands;

/// <summary>
/// `ldm quickstart`: the whole loop in a minute or two on a CPU: make the built-in shapes data, train a small
/// in-context Transformer on it in pixel space, sample a class grid with guidance, say where the PNG is.
/// </summary>
public static class QuickstartCommand
{
    public static Command Create()
    {
        var output = new Option<string>("--out", "-o") { Description = "Output folder.", DefaultValueFactory = _ => "out/quickstart" };
        var steps = new Option<int>("--steps") { Description = "Training steps.", DefaultValueFactory = _ => 400 };
        var seed = new Option<long>("--seed") { DefaultValueFactory = _ => 0, Description = "Seed of data, init and sampling." };
        var float32 = new Option<bool>("--float32") { Description = "Train and sample in float32 instead of bf16 mixed precision (bf16 is ~1.7x faster here)." };
        var command = new Command("quickstart", "Train a small class-conditional model on the built-in shapes data and sample a grid from it.")
        {
            output, steps, seed, float32,
        };
        command.SetAction(parse =>
        {
            string outDir = CliParsing.OutputFolder(parse.GetValue(output)!, "--out");
            long seedValue = parse.GetValue(seed);
            using var dataset = ShapesDataset.Generate(12_000, (int)(seedValue & 0x7FFFFFFF), text: false);
            var model = new TrainCommand.ModelChoice("S/4", BlockType.InContext, LongSkips: true, HiddenSize: 128, Depth: 4, NumHeads: 4, PatchSize: 4, LearnSigma: false);
            var info = TrainCommand.BuildInfo(model, dataset);
            string runDir = Path.Combine(outDir, "run");
            var options = new DiffusionTrainingOptions
            {
                Steps = parse.GetValue(steps), BatchSize = 64, LearningRate = 1e-3, WarmupSteps = 50, GradClip = 1.0,
                EmaDecay = 0.99, Seed = seedValue, Bf16 = !parse.GetValue(float32), LogEvery = 10, CheckpointEvery = 200,
            };
            var clock = System.Diagnostics.Stopwatch.StartNew();
            TrainCommand.Train(info, dataset, options, runDir, sampleGrids: false);
            double trainSeconds = clock.Elapsed.TotalSeconds;

            var (net, _) = TransformerCheckpoint.Load(Path.Combine(runDir, DiffusionTrainer.ModelFile));
            using (net)
            {
                const int perClass = 6;
                var labels = Enumerable.Range(0, info.Transformer.NumClasses).SelectMany(c => Enumerable.Repeat(c, perClass)).ToList();
                var sampler = new ClassConditionalSampler(net, info);
                using var samples = sampler.Sample(labels, new SamplingOptions { Steps = 25, GuidanceScale = 3.0, Seed = seedValue, BatchSize = 72,
                    ComputeDtype = parse.GetValue(float32) ? TorchSharp.torch.ScalarType.Float32 : TorchSharp.torch.ScalarType.BFloat16 });
                string grid = Path.Combine(outDir, "grid.png");
                ImageGrid.Save(grid, samples, perClass);
                Console.WriteLine($"trained {options.Steps} steps in {trainSeconds:F0} s; sampled {labels.Count} images (one row per class: {string.Join(", ", info.ClassNames)})");
                Console.WriteLine($"grid: {Path.GetFullPath(grid)}");
            }
            return 0;
        });
        return command;
    }
}
