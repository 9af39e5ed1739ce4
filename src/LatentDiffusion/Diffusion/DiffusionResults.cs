using static TorchSharp.torch;

namespace LatentDiffusion.Diffusion;

/// <summary>p(x_{t-1} | x_t) as the model defines it, with its x_0 prediction; all shaped like x.</summary>
public sealed record PredictedDistribution(Tensor Mean, Tensor Variance, Tensor LogVariance, Tensor PredXstart);

/// <summary>q(x_{t-1} | x_t, x_0): mean and (clipped log) variance, shaped like x.</summary>
public sealed record PosteriorDistribution(Tensor Mean, Tensor Variance, Tensor LogVarianceClipped);

/// <summary>One reverse step's result.</summary>
public sealed record SampleStep(Tensor Sample, Tensor PredXstart);

/// <summary>Per-sample training terms, each (N,). <see cref="Mse"/> and <see cref="Vb"/> are null when the objective lacks them.</summary>
public sealed record DiffusionLosses(Tensor Loss, Tensor? Mse, Tensor? Vb);

/// <summary>
/// What a sampling loop reports after each step. <see cref="Sample"/> and <see cref="PredXstart"/> are disposed when
/// the step ends: to keep one, use <c>.clone().MoveToOuterDisposeScope()</c> (it then belongs to the loop caller's scope).
/// </summary>
/// <param name="Step">0 for the first (noisiest) step, up to <see cref="TotalSteps"/> − 1.</param>
/// <param name="Index">The step's index in the (possibly respaced) process, counting down to 0.</param>
/// <param name="Timestep">The original timestep the model received.</param>
public sealed record SamplingStep(int Step, int TotalSteps, int Index, long Timestep, Tensor Sample, Tensor PredXstart);
