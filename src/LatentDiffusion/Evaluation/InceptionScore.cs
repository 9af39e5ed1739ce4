using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Evaluation;

/// <summary>
/// The Inception Score (Salimans et al. 2016) as torch-fidelity computes it: p(y|x) = softmax of the logits in
/// float64, the samples cut into <c>splits</c> equal parts, per part exp(mean over x of KL(p(y|x) ‖ p(y))) with
/// p(y) the part's mean prediction; the score is the mean and (population) standard deviation over parts.
/// torch-fidelity shuffles the samples first (NumPy seed 2020); pass <c>shuffleSeed</c> to shuffle with our own
/// generator, or leave it null to keep the given order.
/// </summary>
public static class InceptionScore
{
    /// <summary>Inception Score (mean and std over <paramref name="splits"/> splits) from Inception logits (N, classes); <paramref name="shuffleSeed"/> shuffles the rows before splitting.</summary>
    public static (double mean, double std) Compute(Tensor logits, int splits = 10, long? shuffleSeed = null)
    {
        if (logits.dim() != 2) throw new LdmException($"the Inception Score needs logits (N, classes), got [{string.Join(",", logits.shape)}]; pass the classifier's logits.");
        long n = logits.shape[0];
        if (splits < 1 || n < splits) throw new LdmException($"the Inception Score with {splits} splits needs at least {splits} samples, got {n}; evaluate more samples or use fewer splits.");
        using var scope = torch.NewDisposeScope();
        var x = logits.detach().cpu().to(ScalarType.Float64);
        if (shuffleSeed is { } seed)
        {
            using var g = new Generator((ulong)seed);
            x = x.index_select(0, torch.randperm(n, device: torch.CPU, generator: g));
        }
        var p = x.softmax(1);
        var logP = x.log_softmax(1);
        var scores = new double[splits];
        for (int i = 0; i < splits; i++)
        {
            long begin = i * n / splits, end = (i + 1) * n / splits;
            var pc = p.narrow(0, begin, end - begin);
            var logPc = logP.narrow(0, begin, end - begin);
            var logMarginal = pc.mean([0], keepdim: true).log();
            var kl = (pc * (logPc - logMarginal)).sum(1).mean();
            scores[i] = Math.Exp(kl.item<double>());
        }
        double mean = scores.Average();
        double std = Math.Sqrt(scores.Select(s => (s - mean) * (s - mean)).Average());
        return (mean, std);
    }
}
