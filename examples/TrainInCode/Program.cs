// Trains a small class-conditional diffusion Transformer on the built-in shapes images, in memory (no run folder),
// then samples it through the same pipeline as a shipped model and saves the model as one file.
// Usage: TrainInCode [steps] [grid.png] [model.safetensors]
using LatentDiffusion.Data;
using LatentDiffusion.Denoisers;
using LatentDiffusion.Diffusion;
using LatentDiffusion.Pipelines;
using LatentDiffusion.Training;
using LatentDiffusion.Transformers;

// Before the first tensor: keep freed memory in the heap, passive OpenMP waits, MKL's AVX-512 kernels on AMD (docs/api.md).
LatentDiffusion.Diagnostics.NativeRuntime.ConfigureForCpuWork();

int steps = args.Length > 0 ? int.Parse(args[0]) : 300;
string grid = args.Length > 1 ? args[1] : "trained-shapes.png";
string modelPath = args.Length > 2 ? args[2] : "trained-shapes.safetensors";

// 32x32 RGB shapes, 12 classes (kind x colour), drawn from a seed.
using var data = ShapesDataset.Generate(count: 2000, seed: 0, text: false);

// The paper's in-context Transformer, sized for a CPU: 8x8 patches of 4 pixels, width 64, 2 blocks.
var backbone = TransformerConfig.FromPreset("S/4", inputSize: 32, inChannels: 3, numClasses: data.NumClasses, learnSigma: false)
    with { HiddenSize = 64, Depth = 2, NumHeads = 2 };
var info = new DenoiserInfo(backbone.Validate(), new DiffusionConfig { LearnSigma = false, PredictV = true }, DataSpace.Pixel, data.ClassNames);

var options = new DiffusionTrainingOptions { Steps = steps, BatchSize = 32, LearningRate = 5e-4, WarmupSteps = 20, GradClip = 1, EmaDecay = 0.99 };
using var trainer = new DiffusionTrainer(info, new PixelTrainingData(data), options, runDir: null);
trainer.Run(p => { if (p.Step % 50 == 0 || p.Step == p.TotalSteps) Console.WriteLine($"step {p.Step}: loss {p.Loss:F4}"); });

// Sample the EMA weights: one row per shape kind, one column per colour.
using var pipe = DiffusionPipeline.FromModels(trainer.EmaModel, info);
using var images = pipe.Generate(Enumerable.Range(0, data.NumClasses).ToList(), new SamplingOptions { Steps = 25, GuidanceScale = 1.0 });
images.SaveGrid(grid, columns: 4);

DenoiserCheckpoint.Save(modelPath, trainer.EmaModel, info);
Console.WriteLine($"{images.Count} samples -> {grid}; model -> {modelPath} (load it with DiffusionPipeline.Load)");
