using LatentDiffusion.Diffusion;
using LatentDiffusion.Text;
using LatentDiffusion.Transformers;

namespace LatentDiffusion.Denoisers;

/// <summary>
/// Everything a denoiser checkpoint says besides its weights: the backbone, the diffusion process it was trained with,
/// the space it works in, its condition (class names, or the tokenizer of its captions), the autoencoder that decodes
/// its latents, and the sampling settings it draws best with. <see cref="DenoiserCheckpoint"/> reads and writes it.
/// </summary>
/// <param name="Backbone">The network's config.</param>
/// <param name="Diffusion">The diffusion process the network was trained with.</param>
/// <param name="Space">Pixels or autoencoder latents.</param>
/// <param name="ClassNames">Names of the class ids, when known (ImageNet models carry none).</param>
public sealed record DenoiserInfo(IBackboneConfig Backbone, DiffusionConfig Diffusion, DataSpace Space, IReadOnlyList<string> ClassNames)
{
    /// <summary>The backbone as a Transformer config; a user error for another backbone.</summary>
    public TransformerConfig Transformer => Backbone as TransformerConfig
        ?? throw new LdmException($"this denoiser's backbone is a {Backbone.Kind}, not a transformer.");

    /// <summary>True for a model of images in [-1, 1], false for a latent model.</summary>
    public bool IsPixelSpace => Space == DataSpace.Pixel;

    /// <summary>Class or text.</summary>
    public ConditionKind Condition => Backbone.Text is null ? ConditionKind.Class : ConditionKind.Text;

    /// <summary>
    /// Text models: the tokenizer of the captions (a <see cref="WordVocabulary"/> is saved with the checkpoint under
    /// <see cref="WordVocabulary.MetadataKey"/>); null for class models.
    /// </summary>
    public ITextTokenizer? Tokenizer { get; init; }

    /// <summary>
    /// Latent models: the file name of the autoencoder that decodes the samples, looked up in the denoiser file's own
    /// folder (so a model and its autoencoder travel together, as in <c>models/</c>); null when unknown.
    /// </summary>
    public string? Autoencoder { get; init; }

    /// <summary>The sampling settings the model draws best with; null = <see cref="RecommendedSampling.For"/> its backbone.</summary>
    public RecommendedSampling? Sampling { get; init; }

    /// <summary>The stored sampling settings, or the default ones for this backbone.</summary>
    public RecommendedSampling SamplingOrDefault => Sampling ?? RecommendedSampling.For(Backbone);

    /// <summary>The path of <see cref="Autoencoder"/> next to <paramref name="denoiserPath"/>, when it names one that exists;
    /// an <see cref="LdmException"/> when the stored name is not a plain file name (a folder part, "..", a rooted path).</summary>
    public string? AutoencoderBeside(string denoiserPath)
    {
        if (IsPixelSpace || string.IsNullOrEmpty(Autoencoder)) return null;
        // Only a plain file name beside the model is followed: a model file must not lead the tool to read any other file.
        if (!IsPlainFileName(Autoencoder))
            throw new LdmException($"'{denoiserPath}' names its autoencoder '{Autoencoder}', which is not a plain file name beside it; give the autoencoder with --autoencoder (or autoencoderPath).");
        string path = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(denoiserPath)) ?? ".", Autoencoder);
        return File.Exists(path) ? path : null;
    }

    /// <summary>A file name without any folder part: no separator of any system, not "." or "..", not rooted.</summary>
    static bool IsPlainFileName(string name) =>
        name is not ("." or "..") && name.IndexOfAny(['/', '\\', ':', '\0']) < 0 && !Path.IsPathRooted(name) && Path.GetFileName(name) == name;

    /// <summary>The tokenizer of a text model; a user error for a class model or a missing tokenizer.</summary>
    public ITextTokenizer TextTokenizer => Tokenizer ?? throw new LdmException(Backbone.Text is not null
        ? "this text model has no tokenizer attached; load it with DenoiserCheckpoint.Load, which reads the vocabulary."
        : "this is a class-conditional model; it takes class ids, not captions.");

    /// <summary>Checks that the parts agree: the diffusion's learn_sigma and the backbone's, a text model's tokenizer and its config.</summary>
    public DenoiserInfo Check(string source)
    {
        Backbone.Check();
        Diffusion.Validate();
        if (Diffusion.LearnSigma != Backbone.LearnSigma)
            throw new LdmException($"{source}: the network's learn_sigma ({Backbone.LearnSigma}) and the diffusion's ({Diffusion.LearnSigma}) differ; use the same setting for both.");
        Sampling?.Check();
        if (Backbone.Text is not { } text) return this;
        var tok = TextTokenizer;
        if (TextTokenizers.Normalize(text.Tokenizer) != tok.Kind || tok.VocabSize != text.VocabSize)
            throw new LdmException($"{source} is a text model for a {text.Tokenizer} tokenizer of {text.VocabSize} tokens, but its tokenizer is {tok.Kind} with {tok.VocabSize}; re-create the checkpoint.");
        return this;
    }
}
