using static TorchSharp.torch;

namespace LatentDiffusion.Diffusion;

/// <summary>p(x_{t-1} | x_t) as the model defines it, with its x_0 prediction; all shaped like x.</summary>
/// <param name="Mean">Mean of p(x_{t−1} | x_t).</param>
/// <param name="Variance">Its variance.</param>
/// <param name="LogVariance">Its log-variance.</param>
/// <param name="PredXstart">The model's x_0 prediction (clamped to [−1, 1] when asked).</param>
public sealed record PredictedDistribution(Tensor Mean, Tensor Variance, Tensor LogVariance, Tensor PredXstart);

/// <summary>q(x_{t-1} | x_t, x_0): mean and (clipped log) variance, shaped like x.</summary>
/// <param name="Mean">Posterior mean.</param>
/// <param name="Variance">Posterior variance β̃_t.</param>
/// <param name="LogVarianceClipped">log β̃_t with the t = 0 value replaced by β̃_1's.</param>
public sealed record PosteriorDistribution(Tensor Mean, Tensor Variance, Tensor LogVarianceClipped);

/// <summary>One reverse step's result.</summary>
/// <param name="Sample">The new state (x_{t−1}, or x_{t+1} for DDIM inversion).</param>
/// <param name="PredXstart">The x_0 prediction the step was made from.</param>
public sealed record SampleStep(Tensor Sample, Tensor PredXstart);

/// <summary>Per-sample training terms, each (N,). <see cref="Mse"/> and <see cref="Vb"/> are null when the objective lacks them.</summary>
/// <param name="Loss">The total per-sample loss (take its mean for the batch loss).</param>
/// <param name="Mse">MSE on the mean prediction.</param>
/// <param name="Vb">Variational-bound term in bits/dim (learned variance only).</param>
public sealed record DiffusionLosses(Tensor Loss, Tensor? Mse, Tensor? Vb);

/// <summary>
/// What a sampling loop reports after each step. <see cref="Sample"/> and <see cref="PredXstart"/> are disposed when
/// the step ends: to keep one, use <c>.clone().MoveToOuterDisposeScope()</c> (it then belongs to the loop caller's scope).
/// </summary>
/// <param name="Step">0 for the first (noisiest) step, up to <see cref="TotalSteps"/> − 1.</param>
/// <param name="TotalSteps">Steps of the loop.</param>
/// <param name="Index">The step's index in the (possibly respaced) process, counting down to 0.</param>
/// <param name="Timestep">The original timestep the model received.</param>
/// <param name="Sample">The state after the step.</param>
/// <param name="PredXstart">The model's x_0 prediction at this step.</param>
public sealed record SamplingStep(int Step, int TotalSteps, int Index, long Timestep, Tensor Sample, Tensor PredXstart);
