using LatentDiffusion.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Evaluation;

/// <summary>
/// Mean and covariance (float64) of a set of feature vectors: what FID compares. The covariance is unbiased
/// (divided by n − 1), as <c>np.cov(x, rowvar=False)</c> in pytorch-fid's <c>calculate_activation_statistics</c>.
/// Stored in pytorch-fid's <c>.npz</c> format (arrays <c>mu</c> and <c>sigma</c>, float64).
/// </summary>
public sealed class FeatureStatistics : IDisposable
{
    /// <summary>(D) float64.</summary>
    public Tensor Mu { get; }
    /// <summary>(D, D) float64.</summary>
    public Tensor Sigma { get; }
    /// <summary>Feature dimension D.</summary>
    public int Dim => (int)Mu.shape[0];

    /// <summary>Statistics from a mean (D) and covariance (D, D); copies are kept in float64 on CPU, owned by this object.</summary>
    public FeatureStatistics(Tensor mu, Tensor sigma)
    {
        if (mu.dim() != 1 || sigma.dim() != 2 || sigma.shape[0] != mu.shape[0] || sigma.shape[1] != mu.shape[0])
            throw new LdmException($"feature statistics need mu (D) and sigma (D, D), got [{string.Join(",", mu.shape)}] and [{string.Join(",", sigma.shape)}]; use statistics computed from the same feature network.");
        // Owned by this object (disposed with it), not by whatever dispose scope is open.
        Mu = mu.detach().to(ScalarType.Float64).cpu().clone().DetachFromDisposeScope();
        Sigma = sigma.detach().to(ScalarType.Float64).cpu().clone().DetachFromDisposeScope();
    }

    /// <summary>Statistics of activations (N, D) (any float dtype; computed in float64). Needs N ≥ 2.</summary>
    public static FeatureStatistics FromActivations(Tensor activations)
    {
        if (activations.dim() != 2) throw new LdmException($"activations must be (N, D), got [{string.Join(",", activations.shape)}]; flatten the features first.");
        if (activations.shape[0] < 2) throw new LdmException($"feature statistics need at least 2 samples, got {activations.shape[0]}; evaluate more images.");
        using var scope = torch.NewDisposeScope();
        var x = activations.detach().cpu().to(ScalarType.Float64);
        var mu = x.mean([0]);
        var centred = x - mu;
        var sigma = torch.matmul(centred.t(), centred) / (x.shape[0] - 1);
        return new FeatureStatistics(mu, sigma);
    }

    /// <summary>Writes pytorch-fid's statistics file (<c>mu</c>, <c>sigma</c>), atomically.</summary>
    public void Save(string path) => Npz.Write(path, new Dictionary<string, Tensor> { ["mu"] = Mu, ["sigma"] = Sigma });

    /// <summary>Reads a pytorch-fid statistics file (arrays <c>mu</c> and <c>sigma</c>).</summary>
    public static FeatureStatistics Load(string path)
    {
        if (!Npz.Names(path).Contains("mu") || !Npz.Names(path).Contains("sigma"))
            throw new LdmException($"'{path}' is not a statistics file (it has no 'mu' and 'sigma' arrays); pass pytorch-fid statistics or a folder of reference images.");
        var arrays = Npz.Read(path, ["mu", "sigma"]);
        using var mu = arrays["mu"];
        using var sigma = arrays["sigma"];
        return new FeatureStatistics(mu, sigma);
    }

    /// <summary>Disposes the mean and covariance.</summary>
    public void Dispose() { Mu.Dispose(); Sigma.Dispose(); }
}
