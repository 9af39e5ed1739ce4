using LatentDiffusion.Data;
using LatentDiffusion.Denoisers;
using LatentDiffusion.Pipelines;

namespace LatentDiffusion.Evaluation;

/// <summary>The shapes checker's verdict on a model's samples.</summary>
/// <param name="Condition">class or text.</param>
/// <param name="Images">Samples checked.</param>
/// <param name="Accuracy">Class models: kind and colour right; text models: one-shape prompts with kind, colour, size and position right.</param>
/// <param name="KindAndColourAccuracy">Fraction with the asked kinds and colours (size and position not checked).</param>
/// <param name="TwoShapeAccuracy">Text models: two-shape prompts with both shapes right in every attribute (null for class models).</param>
/// <param name="PerGroup">Class name (or "one shape" / "two shapes") → fraction right.</param>
/// <param name="Seconds">Wall time of sampling and checking.</param>
/// <param name="ReconstructionAccuracy">Latent models: the same check on the autoencoder's reconstructions of the asked
/// scenes drawn exactly (the first stage alone: the most the samples can reach); <see cref="Accuracy"/>'s groups. Null for pixel models.</param>
/// <param name="ReconstructionTwoShapeAccuracy">Latent text models: the same for the two-shape scenes.</param>
public sealed record ShapesEvaluationResult(string Condition, int Images, double Accuracy, double KindAndColourAccuracy, double? TwoShapeAccuracy,
    IReadOnlyDictionary<string, double> PerGroup, double Seconds, double? ReconstructionAccuracy = null, double? ReconstructionTwoShapeAccuracy = null);

/// <summary>
/// Samples a class- or text-conditional model of the built-in <c>shapes</c> data and reads the samples back with
/// <see cref="ShapesChecker"/>: class models get <c>perClass</c> samples of each of the 12 classes; text models get
/// <c>count</c> one-shape and <c>count</c> two-shape captions drawn like the data set's (a fixed seed apart from training's).
/// For a latent model the asked scenes are also drawn exactly and passed through its autoencoder alone: what the
/// checker finds in those reconstructions is the ceiling of the samples (a shape the autoencoder loses, no denoiser
/// can draw).
/// </summary>
public static class ShapesEvaluation
{
    /// <summary>Seed of the evaluation captions (the training captions come from the run's seed, 0 by default).</summary>
    public const int PromptSeed = 2024;

    /// <summary>Samples the model and checks every sample (see the class summary).</summary>
    /// <param name="pipeline">A model trained on the <c>shapes</c> data.</param>
    /// <param name="options">Sampler, steps, guidance, seed.</param>
    /// <param name="count">Class models: samples per class; text models: one-shape and two-shape prompts each.</param>
    public static ShapesEvaluationResult Run(DiffusionPipeline pipeline, int count, SamplingOptions options)
    {
        if (count < 1) throw new LdmOptionException(nameof(ShapesEvaluation), nameof(count), count, "be at least 1");
        if (!pipeline.ReturnsImages)
            throw new LdmException("the shapes checker reads images, and this latent model was loaded without its autoencoder; load it with its autoencoder.");
        var info = pipeline.Info;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        if (info.Condition == ConditionKind.Class)
        {
            if (!info.ClassNames.SequenceEqual(ShapesDataset.ClassNames))
                throw new LdmException("this class model was not trained on the shapes data (its class names differ); the shapes checker reads only shapes images.");
            var labels = Enumerable.Range(0, ShapesDataset.NumClasses).SelectMany(c => Enumerable.Repeat(c, count)).ToList();
            using var generated = pipeline.Generate(labels, options);
            var classAsked = labels.Select(ShapesChecker.ForClass).ToList();
            var report = ShapesChecker.Check(generated.Images, classAsked, checkLayout: false);
            var perClass = Enumerable.Range(0, ShapesDataset.NumClasses).ToDictionary(
                c => ShapesDataset.ClassNames[c], c => (double)Enumerable.Range(0, labels.Count).Count(i => labels[i] == c && report.PerImage[i]) / count);
            // The class checker asks only kind and colour, so any scene of the class serves as the autoencoder's input.
            var classScenes = Enumerable.Range(0, labels.Count).Select(i => new[] { ClassScene(labels[i], i) }).ToList();
            double? classCeiling = pipeline.Autoencoder is { } classAe ? ReconstructedRight(classAe, classScenes, classAsked, checkLayout: false) : null;
            return new ShapesEvaluationResult("class", labels.Count, report.Accuracy, report.KindAndColourAccuracy, null, perClass, clock.Elapsed.TotalSeconds,
                classCeiling);
        }
        var scenes = ShapesDataset.GenerateScenes(count * 8, PromptSeed, text: true);
        var one = scenes.Where(s => s.Length == 1).Take(count).ToList();
        var two = scenes.Where(s => s.Length == 2).Take(count).ToList();
        if (one.Count < count || two.Count < count) throw new InvalidOperationException("too few generated captions");
        var asked = one.Concat(two).ToList();
        var prompts = asked.Select(ShapesDataset.Caption).ToList();
        using var generatedText = pipeline.Generate(prompts, options);
        var textImages = generatedText.Images;
        var r = ShapesChecker.Check(textImages, asked, checkLayout: true);
        double oneAcc = (double)Enumerable.Range(0, count).Count(i => r.PerImage[i]) / count;
        double twoAcc = (double)Enumerable.Range(count, count).Count(i => r.PerImage[i]) / count;
        var kc = ShapesChecker.Check(textImages.narrow(0, 0, count), one, checkLayout: false);
        // Which of the two is missed: the shape of the caption's first phrase or of its second.
        double PhraseRight(int phrase, bool layout = true) => (double)Enumerable.Range(count, count).Count(i => ShapesChecker.Contains(r.Found[i], asked[i][phrase], layout)) / count;
        double? oneCeiling = null, twoCeiling = null;
        if (pipeline.Autoencoder is { } ae)
        {
            oneCeiling = ReconstructedRight(ae, one, one, checkLayout: true);
            twoCeiling = ReconstructedRight(ae, two, two, checkLayout: true);
        }
        return new ShapesEvaluationResult("text", asked.Count, oneAcc, kc.Accuracy, twoAcc,
            new Dictionary<string, double>
            {
                ["one shape"] = oneAcc, ["two shapes"] = twoAcc,
                ["two shapes: first phrase's shape drawn"] = PhraseRight(0), ["two shapes: second phrase's shape drawn"] = PhraseRight(1),
                ["two shapes: first phrase's kind and colour drawn"] = PhraseRight(0, layout: false),
                ["two shapes: second phrase's kind and colour drawn"] = PhraseRight(1, layout: false),
            }, clock.Elapsed.TotalSeconds, oneCeiling, twoCeiling);
    }

    /// <summary>A scene of class <paramref name="classId"/>: size and position varied with <paramref name="index"/>.</summary>
    static ShapeSpec ClassScene(int classId, int index)
    {
        var (kind, colour) = ShapesDataset.ClassAttributes(classId);
        return new ShapeSpec(kind, colour, (ShapeSize)(index % 2), (ShapePosition)(index / 2 % 9));
    }

    /// <summary>Fraction of <paramref name="drawn"/> (drawn exactly, then through the autoencoder) the checker finds showing <paramref name="asked"/>.</summary>
    static double ReconstructedRight(Autoencoders.AutoencoderKL autoencoder, IReadOnlyList<ShapeSpec[]> drawn, IReadOnlyList<ShapeSpec[]> asked,
        bool checkLayout)
    {
        using var scope = TorchSharp.torch.NewDisposeScope();
        using var noGrad = TorchSharp.torch.no_grad();
        autoencoder.eval();
        int n = drawn.Count;
        var pixels = drawn.Select(s => ShapesDataset.Render(s).Data).ToArray();
        int size = ShapesDataset.ImageSize;
        var hwc = TorchSharp.torch.tensor(pixels.SelectMany(p => p).ToArray(), [n, size, size, 3], TorchSharp.torch.ScalarType.Byte);
        var images = hwc.permute(0, 3, 1, 2).to(TorchSharp.torch.ScalarType.Float32).div(127.5).sub(1.0);
        var parts = new List<TorchSharp.torch.Tensor>();
        for (long i = 0; i < n; i += 64)
            parts.Add(autoencoder.forward(images.narrow(0, i, Math.Min(64, n - i))).to(TorchSharp.torch.ScalarType.Float32).cpu());
        return ShapesChecker.Check(TorchSharp.torch.cat(parts, 0), asked, checkLayout).Accuracy;
    }
}
