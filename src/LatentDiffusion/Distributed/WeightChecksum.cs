using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Distributed;

/// <summary>
/// Checks that every rank holds the same weights. Each weight is summarised by its float64 sum and sum of squares;
/// rank 0's summaries are broadcast and every rank compares its own, to 1e-6 relative: thread counts that differ
/// between machines may change a reduction's last bits, while a missed or wrong update moves a summary by far more.
/// Every rank learns whether any rank differed, so all of them stop together instead of one waiting forever.
/// </summary>
public static class WeightChecksum
{
    const double Tolerance = 1e-6;

    /// <summary>Throws <see cref="LdmException"/> on every rank when some rank's weights differ from rank 0's.</summary>
    /// <param name="group">The ranks that should agree.</param>
    /// <param name="weights">The weights, by name, in the same order on every rank.</param>
    /// <param name="step">The training step, for the message.</param>
    public static void Check(IProcessGroup group, IEnumerable<(string name, Tensor weight)> weights, long step)
    {
        if (group.Size == 1) return;
        using var scope = torch.NewDisposeScope();
        var list = weights.ToList();
        var mine = Summaries(list.Select(w => w.weight));
        var main = mine.clone();
        group.Broadcast(main);
        // Σw is bounded by √(n·Σw²): each summary is compared relative to its natural size.
        var n = torch.tensor(list.Select(w => (double)w.weight.NumberOfElements).ToArray(), dtype: ScalarType.Float64, device: torch.CPU);
        var scale = torch.stack([(n * mine[.., 1]).sqrt(), mine[.., 1]], 1).clamp_min(1e-30);
        var differs = (mine - main).abs() > scale * Tolerance;
        var bad = differs.any(1);
        using var flag = torch.tensor(bad.any().item<bool>() ? 1L : 0L, device: torch.CPU);
        group.AllReduceSum(flag);
        if (flag.item<long>() == 0) return;
        string where = bad.any().item<bool>()
            ? $"rank {group.Rank}'s '{list[(int)bad.nonzero()[0, 0].item<long>()].name}' differs from rank 0's"
            : "another rank's weights differ from rank 0's";
        throw new LdmException($"the ranks' weights diverged at step {step} ({where}); ranks must run the same ldm build, data and options. Start the run again from its last checkpoint.");
    }

    /// <summary>(count, 2) float64: each weight's sum and sum of squares.</summary>
    static Tensor Summaries(IEnumerable<Tensor> weights)
    {
        var rows = weights.Select(w =>
        {
            var d = w.detach().to(ScalarType.Float64, torch.CPU);
            return torch.stack([d.sum(), d.square().sum()]);
        }).ToList();
        return torch.stack(rows);
    }
}
