using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests.Fixtures;

public readonly record struct ComparisonResult(bool Passed, double MaxAbsError, string Message);

/// <summary>numpy.allclose semantics: |actual − expected| ≤ atol + rtol·|expected| elementwise; integers exactly.</summary>
public static class TensorComparison
{
    public static ComparisonResult Compare(Tensor actual, Tensor expected, Tolerance tol)
    {
        using var scope = torch.NewDisposeScope();
        if (!actual.shape.SequenceEqual(expected.shape))
            return new(false, double.PositiveInfinity, $"shape [{string.Join(",", actual.shape)}] instead of [{string.Join(",", expected.shape)}]");
        bool integer = !torch.is_floating_point(expected);
        var a = actual.detach().cpu().to(ScalarType.Float64);
        var e = expected.detach().cpu().to(ScalarType.Float64);
        if (a.NumberOfElements == 0) return new(true, 0, "empty");
        var err = (a - e).abs();
        double maxErr = err.max().item<double>();
        if (double.IsNaN(maxErr) || a.isnan().any().item<bool>())
            return new(false, double.NaN, "NaN in the result");
        if (integer || (tol.Atol == 0 && tol.Rtol == 0))
            return maxErr == 0 ? new(true, 0, "exact") : new(false, maxErr, $"not exact, max|err| {maxErr:G3}");
        var bound = tol.Atol + tol.Rtol * e.abs();
        var bad = err > bound;
        long nBad = bad.sum().item<long>();
        if (nBad == 0) return new(true, maxErr, "ok");
        double worstRatio = (err / bound).max().item<double>();
        return new(false, maxErr, $"{nBad}/{a.NumberOfElements} elements out of tolerance (atol {tol.Atol:G3}, rtol {tol.Rtol:G3}), max|err| {maxErr:G3}, worst {worstRatio:F1}x the bound");
    }
}
