using static TorchSharp.torch;

namespace LatentDiffusion.Training;

/// <summary>
/// What a trainer hands to <see cref="TrainingRun"/>: its settings, its state for a checkpoint and one step function.
/// The run owns everything else (step count, schedule, metrics, checkpoints, resume).
/// </summary>
internal interface ITrainable
{
    /// <summary>The kind of run (e.g. <c>diffusion-transformer</c>), recorded in the checkpoint so another trainer's run is refused.</summary>
    string Kind { get; }

    /// <summary>Architecture and hyperparameters that shape the loss curve; a resume must ask for the same ones.</summary>
    RunSettings Settings { get; }

    /// <summary>A resume may go on with other <see cref="Settings"/> than the run was started with (they are then recorded as the run's).</summary>
    bool AllowChangedSettings { get; }

    /// <summary>Metadata stored in the checkpoint besides the run's own (e.g. the model config, so the file opens like a model).</summary>
    IReadOnlyDictionary<string, string> CheckpointMetadata { get; }

    /// <summary>Everything a resume needs (weights, EMA, optimizer states), by name; the tensors stay owned by the trainer.</summary>
    IReadOnlyDictionary<string, Tensor> StateTensors();

    /// <summary>Restores <see cref="StateTensors"/> as read from <paramref name="source"/>.</summary>
    void LoadState(IReadOnlyDictionary<string, Tensor> state, string source);

    /// <summary>The trained weights, checked finite before every checkpoint so a bad update never replaces a good checkpoint.</summary>
    IEnumerable<(string name, Tensor weight)> Weights();

    /// <summary>
    /// One optimisation step at 0-based <paramref name="step"/>; all its randomness must derive from (seed, step) so a
    /// resumed run repeats it exactly. Returns named values in log order, one of them <c>loss</c>.
    /// </summary>
    IReadOnlyDictionary<string, double> TrainStep(long step, double learningRate);

    /// <summary>Called after every checkpoint: writes the model a user samples from into <paramref name="runDir"/>
    /// (null: in memory, write nothing); <paramref name="finished"/> at the last step.</summary>
    void PublishModel(string? runDir, long step, bool finished);
}
