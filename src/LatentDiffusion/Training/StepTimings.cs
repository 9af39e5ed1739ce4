using System.Diagnostics;

namespace LatentDiffusion.Training;

/// <summary>The parts of a training step that <see cref="StepTimings"/> times.</summary>
public enum StepPhase
{
    /// <summary>Waiting for the prefetched batch and moving it to the device, with the step's timestep and noise draws.</summary>
    Data,
    /// <summary>The forward pass and the loss (up to reading the loss value).</summary>
    Forward,
    /// <summary>Zeroing the gradients and the backward pass.</summary>
    Backward,
    /// <summary>The update: gradient clipping, AdamW, and mixed precision's weight and gradient copies.</summary>
    Optimizer,
    /// <summary>The EMA update of the weights.</summary>
    Ema,
}

/// <summary>
/// An opt-in record of where each training step's time went, by <see cref="StepPhase"/>: set
/// <see cref="DiffusionTrainer.Timings"/> to one and every step adds a row (a trainer without it times nothing).
/// Used by <c>ldm bench --profile</c> to show the next bottleneck.
/// </summary>
public sealed class StepTimings
{
    static readonly StepPhase[] AllPhases = Enum.GetValues<StepPhase>();
    readonly List<double[]> _steps = [];

    /// <summary>The phases, in step order.</summary>
    public static IReadOnlyList<StepPhase> Phases => AllPhases;

    /// <summary>Steps recorded.</summary>
    public int Count => _steps.Count;

    /// <summary>Seconds step <paramref name="index"/> (0 = the first recorded) spent in <paramref name="phase"/>.</summary>
    public double Seconds(int index, StepPhase phase) => _steps[index][(int)phase];

    /// <summary>Seconds step <paramref name="index"/> spent in all phases together.</summary>
    public double Total(int index) => _steps[index].Sum();

    /// <summary>The median over the recorded steps of the time spent in <paramref name="phase"/>, in seconds.</summary>
    public double Median(StepPhase phase) => MedianOf(_steps.Select(s => s[(int)phase]));

    /// <summary>The median over the recorded steps of their timed total, in seconds.</summary>
    public double MedianTotal => MedianOf(_steps.Select(s => s.Sum()));

    /// <summary>Forgets the recorded steps (e.g. after warm-up).</summary>
    public void Clear() => _steps.Clear();

    /// <summary>Starts a step's row; the trainer calls <see cref="Lap.End"/> after each phase.</summary>
    internal Lap Begin()
    {
        var row = new double[AllPhases.Length];
        _steps.Add(row);
        return new Lap(row);
    }

    static double MedianOf(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        if (sorted.Length == 0) return double.NaN;
        int n = sorted.Length;
        return n % 2 == 1 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
    }

    /// <summary>The clock of one step: each <see cref="End"/> adds the time since the previous one to a phase.</summary>
    internal sealed class Lap(double[] row)
    {
        readonly Stopwatch _clock = Stopwatch.StartNew();

        public void End(StepPhase phase)
        {
            row[(int)phase] += _clock.Elapsed.TotalSeconds;
            _clock.Restart();
        }
    }
}
