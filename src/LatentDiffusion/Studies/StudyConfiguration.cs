using LatentDiffusion.Denoisers;

namespace LatentDiffusion.Studies;

/// <summary>One contestant of a <see cref="Study"/>: a name (a file-safe label in tables, plots and run folders) and the model to train.</summary>
/// <param name="Name">Letters, digits, '-', '_' and '.'; unique within the study.</param>
/// <param name="Model">Backbone, diffusion, data space and conditioning; every configuration of a study must fit the same data.</param>
public sealed record StudyConfiguration(string Name, DenoiserInfo Model);
