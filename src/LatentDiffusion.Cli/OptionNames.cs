using System.Text;
using LatentDiffusion;

namespace LatentDiffusion.Cli;

/// <summary>
/// Maps a library setting (<see cref="LdmOptionException.Owner"/>.<see cref="LdmOptionException.Property"/>) to the
/// flag that sets it, so a library error reads in the tool's own words: "--steps must be at least 1, got 0".
/// </summary>
public static class OptionNames
{
    /// <summary>Settings whose flag is not the kebab-case of the property name.</summary>
    static readonly Dictionary<string, string> Exceptions = new(StringComparer.Ordinal)
    {
        ["SamplingOptions.GuidanceScale"] = "--guidance",
        ["DiffusionTrainingOptions.LearningRate"] = "--lr",
        ["DiffusionTrainingOptions.WarmupSteps"] = "--warmup",
        ["DiffusionTrainingOptions.Bf16"] = "--dtype",
        ["DiffusionTrainingOptions.HorizontalFlip"] = "--flip",
        ["SamplingOptions.ComputeDtype"] = "--dtype",
        ["AutoencoderTrainingOptions.LearningRate"] = "--lr",
        ["AutoencoderTrainingOptions.DiscriminatorStart"] = "--disc-start",
        ["AutoencoderTrainingOptions.DiscriminatorWeight"] = "--disc-weight",
        ["AutoencoderTrainingOptions.HorizontalFlip"] = "--flip",
        ["ClassifierTrainingOptions.LearningRate"] = "--lr",
        ["ClassifierTrainingOptions.Augment"] = "--no-augment",
        ["EvaluationOptions.NearestK"] = "--k",
        ["EvaluationOptions.PrecisionRecall"] = "--no-precision-recall",
        ["AutoencoderKL.LatentScale"] = "--scale-factor",
        ["DiTImport.NumHeads"] = "--num-heads",
        ["TextConditionConfig.MaxTokens"] = "--max-text-tokens",
        ["TextConditionConfig.EncoderLayers"] = "--text-encoder-layers",
        ["DiffusionConfig.Schedule"] = "--noise-schedule",
        ["GeneratedImages.Count"] = "--num",
        ["ShapesDataset.Count"] = "shapes:count",
    };

    /// <summary>The flag of a library setting: the table above, else <c>--</c> + kebab-case of the property.</summary>
    public static string FlagOf(string owner, string property) =>
        Exceptions.TryGetValue($"{owner}.{property}", out var flag) ? flag : "--" + Kebab(property);

    /// <summary>The message of a user error as the tool prints it.</summary>
    public static string MessageOf(LdmException e) => e switch
    {
        LdmOptionException o => o.MessageFor(FlagOf(o.Owner, o.Property)),
        Training.RunSettingsChangedException c => c.MessageWith(NameOf, $"add {AllowChangedSettings} to go on with the new ones", "choose a new --out folder"),
        _ => e.Message,
    };

    /// <summary>The flag that lets a resume go on with changed settings (`ldm train`, `ldm train-autoencoder`).</summary>
    public const string AllowChangedSettings = "--allow-changed-settings";

    /// <summary>A changed run setting in the tool's words: the flag of an options setting, <c>--data count</c> for the
    /// data size, the config key (<c>hidden_size</c>) for the model, whose flags may come from a preset or a config file.</summary>
    public static string NameOf(Training.RunSettingChange change) =>
        change.Owner is { } owner ? FlagOf(owner, change.Name) : change.Name == Training.RunSettingChange.DataCount ? "--data count" : change.Name;

    static string Kebab(string name)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < name.Length; i++)
        {
            if (char.IsUpper(name[i]) && i > 0) sb.Append('-');
            sb.Append(char.ToLowerInvariant(name[i]));
        }
        return sb.ToString();
    }
}
