using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Evaluation;

/// <summary>
/// The Fréchet distance between two Gaussians, in float64:
/// d² = ‖μ₁ − μ₂‖² + tr(Σ₁) + tr(Σ₂) − 2·tr((Σ₁Σ₂)^½).
/// pytorch-fid takes the trace of scipy's general <c>sqrtm(Σ₁Σ₂)</c>. We use that Σ₁Σ₂ is similar to the symmetric
/// positive semi-definite A = Σ₁^½ Σ₂ Σ₁^½, so tr((Σ₁Σ₂)^½) = Σᵢ √λᵢ(A): two symmetric eigendecompositions, no
/// complex arithmetic, and well defined when the covariances are singular (fewer samples than dimensions), where
/// tiny negative eigenvalues from rounding are clamped to zero.
/// </summary>
public static class FrechetDistance
{
    /// <summary>FID: the Fréchet distance between two feature statistics (made with the same feature network).</summary>
    public static double Compute(FeatureStatistics a, FeatureStatistics b) => Compute(a.Mu, a.Sigma, b.Mu, b.Sigma);

    /// <summary>The Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2): means (D), covariances (D, D), computed in float64.</summary>
    public static double Compute(Tensor mu1, Tensor sigma1, Tensor mu2, Tensor sigma2)
    {
        if (!mu1.shape.SequenceEqual(mu2.shape) || !sigma1.shape.SequenceEqual(sigma2.shape))
            throw new LdmException($"the two feature statistics have different sizes ([{string.Join(",", mu1.shape)}] vs [{string.Join(",", mu2.shape)}]); compute both with the same feature network.");
        using var scope = torch.NewDisposeScope();
        var m1 = mu1.to(ScalarType.Float64).cpu();
        var m2 = mu2.to(ScalarType.Float64).cpu();
        var s1 = Symmetrize(sigma1.to(ScalarType.Float64).cpu());
        var s2 = Symmetrize(sigma2.to(ScalarType.Float64).cpu());
        var diff = m1 - m2;
        double meanTerm = torch.dot(diff, diff).item<double>();
        double traceTerm = s1.trace().item<double>() + s2.trace().item<double>();
        double trSqrt = TraceSqrtProduct(s1, s2);
        if (double.IsNaN(trSqrt) || double.IsInfinity(trSqrt))
            throw new LdmException("the Fréchet distance is not finite (NaN or infinite features); check the images and the feature network.");
        return meanTerm + traceTerm - 2 * trSqrt;
    }

    /// <summary>tr((Σ₁Σ₂)^½) via the symmetric form Σ₁^½ Σ₂ Σ₁^½.</summary>
    public static double TraceSqrtProduct(Tensor sigma1, Tensor sigma2)
    {
        using var scope = torch.NewDisposeScope();
        var root1 = SymmetricSqrt(Symmetrize(sigma1.to(ScalarType.Float64)));
        var inner = Symmetrize(torch.matmul(torch.matmul(root1, sigma2.to(ScalarType.Float64)), root1));
        var (eigenvalues, _) = torch.linalg.eigh(inner);
        return eigenvalues.clamp_min(0).sqrt().sum().item<double>();
    }

    /// <summary>The symmetric PSD square root V·diag(√max(λ, 0))·Vᵀ of a symmetric matrix.</summary>
    public static Tensor SymmetricSqrt(Tensor symmetric)
    {
        using var scope = torch.NewDisposeScope();
        var (w, v) = torch.linalg.eigh(symmetric);
        var root = torch.matmul(v * w.clamp_min(0).sqrt().unsqueeze(0), v.t());
        return root.MoveToOuterDisposeScope();
    }

    static Tensor Symmetrize(Tensor m) => (m + m.t()) * 0.5;
}
