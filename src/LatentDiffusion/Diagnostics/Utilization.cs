namespace LatentDiffusion.Diagnostics;

/// <summary>
/// The share of the machine's matrix-product peak that a piece of work reaches (often called MFU, model FLOPs
/// utilization): the model's FLOPs counted from its layer shapes (<see cref="Diffusion.ModelCost"/>), divided by the
/// time taken and by the measured product speed of the dtype it ran in (<see cref="MatmulThroughput"/>). Element-wise
/// work, copies, the optimizer and waits all count as time without FLOPs, so it says how much of a step is products.
/// </summary>
public static class Utilization
{
    /// <summary>The share in [0, ∞) (above 1 when the peak was measured low): <paramref name="flops"/> / <paramref name="seconds"/> / (<paramref name="peakGFlops"/> × 1e9).</summary>
    public static double Of(double flops, double seconds, double peakGFlops) =>
        seconds > 0 && peakGFlops > 0 ? flops / seconds / (peakGFlops * 1e9) : double.NaN;
}
