using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace LatentDiffusion.Evaluation;

/// <summary>How to train a <see cref="DomainClassifier"/>.</summary>
public sealed record ClassifierTrainingOptions
{
    /// <summary>Passes over the training images.</summary>
    public int Epochs { get; init; } = 5;
    /// <summary>Images per optimiser step.</summary>
    public int BatchSize { get; init; } = 256;
    /// <summary>Peak learning rate of AdamW; decays to 0 on a cosine over all steps.</summary>
    public double LearningRate { get; init; } = 3e-3;
    /// <summary>AdamW's decoupled weight decay.</summary>
    public double WeightDecay { get; init; } = 0.01;
    /// <summary>Seed of the shuffling and augmentation draws, so a run repeats exactly.</summary>
    public long Seed { get; init; } = 0;
    /// <summary>Random horizontal flips and shifts of up to 2 pixels (border-replicated).</summary>
    public bool Augment { get; init; } = true;
}

/// <summary>Trains and scores a <see cref="DomainClassifier"/> on in-memory images (uint8 or float in [0, 1], NCHW).</summary>
public static class DomainClassifierTrainer
{
    /// <summary>Builds a classifier whose initial weights depend only on <paramref name="seed"/>.</summary>
    public static DomainClassifier Create(DomainClassifierConfig config, long seed)
    {
        torch.random.manual_seed(seed);
        return new DomainClassifier(config);
    }

    /// <summary>Trains in place; returns the mean training loss of each epoch. <paramref name="progress"/> gets
    /// (epoch, step within epoch, steps per epoch, running loss).</summary>
    public static List<double> Train(DomainClassifier model, Tensor images, Tensor labels, ClassifierTrainingOptions options,
        Action<int, int, int, double>? progress = null)
    {
        long n = images.shape[0];
        if (labels.shape[0] != n) throw new LdmException($"{n} images but {labels.shape[0]} labels; pass one label per image.");
        if (n == 0) throw new LdmException("no training images; check the data path.");
        if (options.Epochs < 1 || options.BatchSize < 1 || options.LearningRate <= 0)
            throw new LdmException("epochs, batch size and learning rate must be positive; fix the training options.");
        long maxLabel = labels.max().item<long>(), minLabel = labels.min().item<long>();
        if (minLabel < 0 || maxLabel >= model.Config.NumClasses)
            throw new LdmException($"labels range over {minLabel}..{maxLabel} but the classifier has {model.Config.NumClasses} classes; check the class names.");

        using var g = new Generator((ulong)options.Seed, torch.CPU);
        var device = Devices.Of(model);
        int stepsPerEpoch = (int)((n + options.BatchSize - 1) / options.BatchSize);
        var optimizer = torch.optim.AdamW(model.parameters(), lr: options.LearningRate, weight_decay: options.WeightDecay);
        var schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, options.Epochs * stepsPerEpoch);
        var losses = new List<double>();
        model.train();
        for (int epoch = 0; epoch < options.Epochs; epoch++)
        {
            using var order = torch.randperm(n, device: torch.CPU, generator: g);
            double sum = 0;
            for (int step = 0; step < stepsPerEpoch; step++)
            {
                using var scope = torch.NewDisposeScope();
                long begin = (long)step * options.BatchSize;
                var idx = order.narrow(0, begin, Math.Min(options.BatchSize, n - begin));
                var x = ToUnitFloat(images.index_select(0, idx)).to(device);
                var y = labels.index_select(0, idx).to(ScalarType.Int64, device);
                if (options.Augment) x = Augment(x, g);
                optimizer.zero_grad();
                var loss = F.cross_entropy(model.forward(x), y);
                loss.backward();
                optimizer.step();
                schedule.step();
                sum += loss.item<float>();
                progress?.Invoke(epoch, step + 1, stepsPerEpoch, sum / (step + 1));
            }
            losses.Add(sum / stepsPerEpoch);
        }
        model.eval();
        return losses;
    }

    /// <summary>Predicted class per image, on the CPU (eval mode, no gradients, in batches on the model's device).</summary>
    public static Tensor Predict(DomainClassifier model, Tensor images, int batchSize = 512)
    {
        model.eval();
        using var noGrad = torch.no_grad();
        var parts = new List<Tensor>();
        for (long begin = 0; begin < images.shape[0]; begin += batchSize)
        {
            using var scope = torch.NewDisposeScope();
            var x = ToUnitFloat(images.narrow(0, begin, Math.Min(batchSize, images.shape[0] - begin)));
            parts.Add(model.forward(x).argmax(1).cpu().MoveToOuterDisposeScope());
        }
        var result = torch.cat(parts, 0);
        foreach (var p in parts) p.Dispose();
        return result;
    }

    /// <summary>Share of images whose predicted class equals the label.</summary>
    public static double Accuracy(DomainClassifier model, Tensor images, Tensor labels, int batchSize = 512)
    {
        using var predicted = Predict(model, images, batchSize);
        using var correct = predicted.eq(labels.to(ScalarType.Int64, predicted.device)).sum();
        return correct.item<long>() / (double)images.shape[0];
    }

    static Tensor ToUnitFloat(Tensor x) => x.dtype == ScalarType.Byte ? x.to(ScalarType.Float32) / 255.0 : x.to(ScalarType.Float32);

    /// <summary>Per-image random horizontal flip and integer shift in [-2, 2] px, replicating the border. The draws come
    /// from the CPU generator and move to x's device.</summary>
    static Tensor Augment(Tensor x, Generator g)
    {
        long n = x.shape[0], h = x.shape[2], w = x.shape[3];
        var flip = (torch.rand(n, device: torch.CPU, generator: g) < 0.5).to(x.device);
        var shifts = torch.randint(-2, 3, [n, 2], device: torch.CPU, generator: g).to(ScalarType.Float32, x.device);
        // affine_grid works in [-1, 1] coordinates: one pixel is 2/size.
        var sx = torch.where(flip, -1.0f, 1.0f);
        var zeros = torch.zeros(n, device: x.device);
        var tx = shifts[.., 0] * (2.0f / w);
        var ty = shifts[.., 1] * (2.0f / h);
        var theta = torch.stack([sx, zeros, tx, zeros, torch.ones(n, device: x.device), ty], 1).reshape(n, 2, 3);
        var grid = F.affine_grid(theta, [n, x.shape[1], h, w], align_corners: false);
        return F.grid_sample(x, grid, mode: GridSampleMode.Nearest, padding_mode: GridSamplePaddingMode.Border, align_corners: false);
    }
}
