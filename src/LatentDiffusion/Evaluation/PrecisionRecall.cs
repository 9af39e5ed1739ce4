using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Evaluation;

/// <summary>
/// Improved precision and recall (Kynkäänniemi et al. 2019). Each set's manifold is the union of balls around its
/// feature vectors whose radius is the distance to the k-th nearest other vector of the same set.
/// Precision = share of generated vectors inside the real manifold (quality); recall = share of real vectors inside
/// the generated manifold (coverage). Pairwise distances are computed in float64, a block of rows at a time.
/// </summary>
public static class PrecisionRecall
{
    /// <summary>Improved precision and recall (Kynkäänniemi et al.) of fake against real features (N, D), with k-NN radii; distances are computed <paramref name="rowBlock"/> rows at a time.</summary>
    public static (double precision, double recall) Compute(Tensor realFeatures, Tensor fakeFeatures, int k = 3, int rowBlock = 1024)
    {
        if (realFeatures.dim() != 2 || fakeFeatures.dim() != 2 || realFeatures.shape[1] != fakeFeatures.shape[1])
            throw new LdmException($"precision/recall need two feature sets (N, D) of the same D, got [{string.Join(",", realFeatures.shape)}] and [{string.Join(",", fakeFeatures.shape)}]; use one feature network for both.");
        if (realFeatures.shape[0] <= k || fakeFeatures.shape[0] <= k)
            throw new LdmException($"precision/recall with k={k} need more than {k} samples in each set (got {realFeatures.shape[0]} real, {fakeFeatures.shape[0]} generated); evaluate more samples.");
        using var scope = torch.NewDisposeScope();
        var real = realFeatures.detach().cpu().to(ScalarType.Float64);
        var fake = fakeFeatures.detach().cpu().to(ScalarType.Float64);
        var realRadii = KthNeighbourRadii(real, k, rowBlock);
        var fakeRadii = KthNeighbourRadii(fake, k, rowBlock);
        double precision = ShareInsideManifold(fake, real, realRadii, rowBlock);
        double recall = ShareInsideManifold(real, fake, fakeRadii, rowBlock);
        return (precision, recall);
    }

    /// <summary>Distance of every vector to its k-th nearest neighbour in the same set (itself excluded).</summary>
    public static Tensor KthNeighbourRadii(Tensor set, int k, int rowBlock = 1024)
    {
        using var scope = torch.NewDisposeScope();
        long n = set.shape[0];
        var radii = new List<Tensor>();
        for (long start = 0; start < n; start += rowBlock)
        {
            using var inner = torch.NewDisposeScope();
            var d = PairwiseDistances(set.narrow(0, start, Math.Min(n, start + rowBlock) - start), set);
            // The smallest distance is the vector to itself (0): the k-th neighbour is the (k+1)-th smallest.
            var (values, _) = d.topk(k + 1, dim: 1, largest: false, sorted: true);
            radii.Add(values[.., k].MoveToOuterDisposeScope());
        }
        return torch.cat(radii, 0).MoveToOuterDisposeScope();
    }

    /// <summary>Share of <paramref name="queries"/> within radius[j] of some manifold vector j.</summary>
    static double ShareInsideManifold(Tensor queries, Tensor manifold, Tensor radii, int rowBlock)
    {
        long n = queries.shape[0], inside = 0;
        for (long start = 0; start < n; start += rowBlock)
        {
            using var inner = torch.NewDisposeScope();
            var d = PairwiseDistances(queries.narrow(0, start, Math.Min(n, start + rowBlock) - start), manifold);
            inside += (d <= radii.unsqueeze(0)).any(1).sum().item<long>();
        }
        return (double)inside / n;
    }

    /// <summary>Euclidean distances (A rows × B rows) through ‖a‖² + ‖b‖² − 2a·b, clamped at 0 against rounding.</summary>
    public static Tensor PairwiseDistances(Tensor a, Tensor b)
    {
        using var scope = torch.NewDisposeScope();
        var aa = (a * a).sum(1, keepdim: true);
        var bb = (b * b).sum(1).unsqueeze(0);
        var d2 = aa + bb - 2 * torch.matmul(a, b.t());
        return d2.clamp_min(0).sqrt().MoveToOuterDisposeScope();
    }
}
