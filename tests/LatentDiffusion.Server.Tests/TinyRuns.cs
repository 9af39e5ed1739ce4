using LatentDiffusion.Data;
using LatentDiffusion.Denoisers;
using LatentDiffusion.Diffusion;
using LatentDiffusion.Training;
using LatentDiffusion.Transformers;

namespace LatentDiffusion.Server.Tests;

/// <summary>Short real training runs (a tiny pixel Transformer on 64 shapes) written into a run folder as <c>ldm train</c> writes them.</summary>
public static class TinyRuns
{
    /// <summary>Trains in <paramref name="folder"/>; with <paramref name="cancel"/>, cancels it once step <paramref name="cancelAfter"/> is done.</summary>
    public static void Train(string folder, DiffusionTrainingOptions options, CancellationTokenSource? cancel = null, long cancelAfter = 0)
    {
        using var data = ShapesDataset.Generate(count: 64, seed: 0, text: false);
        var backbone = TransformerConfig.FromPreset("S/8", inputSize: 32, inChannels: 3, numClasses: data.NumClasses, learnSigma: false)
            with { HiddenSize = 32, Depth = 1, NumHeads = 2 };
        var info = new DenoiserInfo(backbone.Validate(), new DiffusionConfig { LearnSigma = false, PredictV = true }, DataSpace.Pixel, data.ClassNames);
        using var trainer = new DiffusionTrainer(info, new PixelTrainingData(data), options with { BatchSize = 8 }, folder);
        trainer.Run(p => { if (cancel != null && p.Step >= cancelAfter) cancel.Cancel(); }, cancel?.Token ?? default);
    }
}
