namespace LatentDiffusion.Training;

/// <summary>One setting of a run that a resume asks to change.</summary>
/// <param name="Name">The setting: an options property (<c>LearningRate</c>), a model config key (<c>hidden_size</c>),
/// a diffusion key (<c>diffusion.predict_v</c>) or <c>data.count</c>, the number of training examples.</param>
/// <param name="Old">The value the run was started with, or null when it did not hold this setting.</param>
/// <param name="New">The value asked for now, or null when this run has no such setting.</param>
/// <param name="Owner">The options type that holds the setting (<c>DiffusionTrainingOptions</c>), or null for the model,
/// the diffusion and the data; with <see cref="Name"/> it lets a front end name its own option.</param>
public sealed record RunSettingChange(string Name, string? Old, string? New, string? Owner = null)
{
    /// <summary>The name of the number of training examples (the data order, and so the curve, depends on it).</summary>
    public const string DataCount = "data.count";

    /// <summary><c>name old → new</c>, with the setting called <paramref name="name"/> (default <see cref="Name"/>).</summary>
    public string Describe(string? name = null) => $"{name ?? Name} {Old ?? "(not set)"} → {New ?? "(not set)"}";
}
