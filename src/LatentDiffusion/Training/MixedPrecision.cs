using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Training;

/// <summary>
/// bf16 mixed precision without autocast: the optimizer owns float32 master weights; a bf16 copy of the model does
/// the forward and backward passes (bf16 matrix products run about 4x faster than float32 on CPUs with AVX-512 BF16
/// or AMX); its gradients are copied back to the masters as float32 before the update. The loss itself is computed in
/// float32 by the caller (the model returns float32). bf16 has float32's exponent range, so no loss scaling is needed.
/// Both copies are laid out in one buffer each (<see cref="FlatParameters"/>), so each copy is a single operation.
/// </summary>
internal sealed class MixedPrecision : IDisposable
{
    readonly FlatParameters _master, _compute;

    /// <summary>The bf16 module to run forward/backward on.</summary>
    public nn.Module Compute { get; }

    /// <param name="master">The float32 model's trained parameters, as the optimizer lays them out.</param>
    /// <param name="compute">A fresh module of the same architecture; it is converted to bf16 here.</param>
    public MixedPrecision(FlatParameters master, nn.Module compute)
    {
        compute.to(ScalarType.BFloat16);
        Compute = compute;
        _master = master;
        _compute = FlatParameters.Of(compute, master.Names);
        // Parameters that are not trained (fixed embeddings) are copied once; the trained ones before every forward.
        using (torch.no_grad())
        {
            var masterState = master.Module.state_dict();
            foreach (var (name, t) in compute.state_dict())
                if (!master.Names.Contains(name)) t.copy_(masterState[name]);
        }
        SyncWeights();
    }

    /// <summary>Copies (and rounds) the master weights into the bf16 module; call before each forward.</summary>
    public void SyncWeights()
    {
        using var _ = torch.no_grad();
        _compute.Values.copy_(_master.Values);
    }

    /// <summary>Moves the bf16 gradients onto the float32 masters (replacing theirs) and clears the bf16 ones.</summary>
    public void CopyGradientsToMaster()
    {
        using var _ = torch.no_grad();
        _master.Gradients.copy_(_compute.Gradients);
        _compute.Gradients.zero_();
    }

    public void Dispose()
    {
        _compute.Dispose();
        Compute.Dispose();
    }
}
