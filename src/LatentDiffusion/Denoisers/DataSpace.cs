using System.Text.Json.Serialization;

namespace LatentDiffusion.Denoisers;

/// <summary>What a denoiser works on.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<DataSpace>))]
public enum DataSpace
{
    /// <summary>Images in [-1, 1].</summary>
    [JsonStringEnumMemberName("pixel")] Pixel,
    /// <summary>Autoencoder latents multiplied by the autoencoder's latent scale.</summary>
    [JsonStringEnumMemberName("latent")] Latent,
}

/// <summary>What a denoiser is conditioned on.</summary>
public enum ConditionKind
{
    /// <summary>A class id per image (num_classes 0 with a null class: unconditional).</summary>
    Class,
    /// <summary>A caption per image, as token ids.</summary>
    Text,
}
