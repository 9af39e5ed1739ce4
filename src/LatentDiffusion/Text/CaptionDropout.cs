using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Text;

/// <summary>
/// Caption dropout for classifier-free guidance: in training, each caption becomes the empty caption (all padding,
/// mask all false) with probability p, so the same model also learns the unconditional prediction.
/// </summary>
internal static class CaptionDropout
{
    /// <summary>
    /// The batch with each row emptied with probability <paramref name="probability"/>; one uniform draw per row from
    /// <paramref name="generator"/> (so a run's draws are fixed by its step generator). Returns the new batch and the
    /// (N) bool tensor of dropped rows, on the batch's device (the draws are made on the CPU, docs/devices.md).
    /// </summary>
    public static (TokenBatch batch, Tensor dropped) Apply(TokenBatch batch, double probability, int padId, Generator generator)
    {
        if (probability < 0 || probability >= 1 || double.IsNaN(probability))
            throw new LdmException($"caption dropout {probability} must be in [0, 1); 0.1 is usual.");
        using var scope = torch.NewDisposeScope();
        var drop = (torch.rand(new[] { batch.Count }, device: torch.CPU, generator: generator) < probability).to(batch.Ids.device);
        var row = drop.unsqueeze(1);
        var ids = torch.where(row, torch.full_like(batch.Ids, padId), batch.Ids);
        var mask = batch.Mask.logical_and(row.logical_not());
        return (new TokenBatch(ids.MoveToOuterDisposeScope(), mask.MoveToOuterDisposeScope()), drop.MoveToOuterDisposeScope());
    }
}
