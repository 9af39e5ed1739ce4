using LatentDiffusion.Data;
using LatentDiffusion.Denoisers;
using LatentDiffusion.Diffusion;
using LatentDiffusion.Pipelines;
using LatentDiffusion.Training;
using LatentDiffusion.Transformers;

namespace LatentDiffusion.Server.Tests;

/// <summary>
/// A real training run in the background, written into a run folder as <c>ldm train</c> writes it (metrics.jsonl,
/// checkpoint with settings, samples_STEP.png), so the runs page is tested on a run that is live while it looks:
/// a tiny pixel-space Transformer on shapes, logging every 5 steps, a grid every 25. Stopped by disposing.
/// </summary>
public sealed class LiveTrainingRun : IDisposable
{
    readonly CancellationTokenSource _stop = new();
    readonly Task _training;

    public string Folder { get; }

    public LiveTrainingRun(string folder)
    {
        Folder = folder;
        _training = Task.Factory.StartNew(Train, TaskCreationOptions.LongRunning);
    }

    void Train()
    {
        using var data = ShapesDataset.Generate(count: 512, seed: 0, text: false);
        var backbone = TransformerConfig.FromPreset("S/8", inputSize: 32, inChannels: 3, numClasses: data.NumClasses, learnSigma: false)
            with { HiddenSize = 32, Depth = 1, NumHeads = 2 };
        var info = new DenoiserInfo(backbone.Validate(), new DiffusionConfig { LearnSigma = false, PredictV = true }, DataSpace.Pixel, data.ClassNames);
        // A budget far beyond the test's life: the run is "running", with a time left, until it is stopped.
        var options = new DiffusionTrainingOptions { Steps = 100_000, BatchSize = 16, LearningRate = 1e-3, WarmupSteps = 10, EmaDecay = 0.99, LogEvery = 5, CheckpointEvery = 50, SampleEvery = 25 };
        using var trainer = new DiffusionTrainer(info, new PixelTrainingData(data), options, Folder);
        trainer.OnSample = (step, model) =>
        {
            using var pipe = DiffusionPipeline.FromModels(model, info);
            using var images = pipe.Generate(Enumerable.Range(0, 8).ToList(), new SamplingOptions { Steps = 5, GuidanceScale = 1.0 });
            images.SaveGrid(Path.Combine(Folder, $"samples_{step:D7}.png"), columns: 4);
        };
        try { trainer.Run(cancel: _stop.Token); }
        catch (OperationCanceledException) { }
    }

    /// <summary>Waits until the run has logged at least <paramref name="steps"/> steps and drawn a grid.</summary>
    public void WaitForProgress(long steps, TimeSpan timeout)
    {
        var end = DateTime.UtcNow + timeout;
        string log = Path.Combine(Folder, "metrics.jsonl");
        while (!(File.Exists(log) && File.ReadLines(log).Count() * 5 >= steps && Directory.EnumerateFiles(Folder, "samples_*.png").Any()))
        {
            if (_training.IsFaulted) throw _training.Exception!;
            if (DateTime.UtcNow > end) throw new TimeoutException($"the training run in '{Folder}' has not reached step {steps}");
            Thread.Sleep(200);
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _training.Wait(TimeSpan.FromMinutes(1));
    }
}
