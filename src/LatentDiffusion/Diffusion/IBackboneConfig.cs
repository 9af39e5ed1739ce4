using LatentDiffusion.Text;

namespace LatentDiffusion.Diffusion;

/// <summary>
/// What every denoiser backbone's config (the diffusion Transformer's, and any other network that predicts the noise
/// of a latent or image grid) tells the rest of the library: its input grid, its output, its conditioning, and how
/// to build the network. Training, pipelines and checkpoints work through this and never need the backbone's type.
/// </summary>
public interface IBackboneConfig
{
    /// <summary>The backbone's name in checkpoints (<c>transformer</c>); also the model kind of its file.</summary>
    string Kind { get; }
    /// <summary>Side of the (square) input grid in latent or image pixels.</summary>
    int InputSize { get; }
    /// <summary>Channels of the input grid.</summary>
    int InChannels { get; }
    /// <summary>Channels of the output: <see cref="InChannels"/>, doubled when the variance is learned.</summary>
    int OutChannels { get; }
    /// <summary>The network also predicts the variance interpolation (improved DDPM).</summary>
    bool LearnSigma { get; }
    /// <summary>Number of class labels (class models; 0 for text models).</summary>
    int NumClasses { get; }
    /// <summary>Probability of the null class in training (class models); &gt; 0 gives guidance its unconditional input.</summary>
    double ClassDropoutProb { get; }
    /// <summary>Text conditioning, or null for a class model.</summary>
    TextConditionConfig? Text { get; }
    /// <summary>Whether the network has an unconditional input for guidance (null class or empty caption).</summary>
    bool HasUnconditionalInput { get; }
    /// <summary>Checks every field; throws <see cref="LdmException"/> naming the bad one.</summary>
    void Check();
    /// <summary>A new network of this config, its weights initialised deterministically from <paramref name="seed"/>.</summary>
    DenoiserNetwork Build(long seed = 0);
    /// <summary>
    /// Parameters and forward FLOPs of one image through the network of this config, counted from its layer shapes
    /// without building it (see <see cref="ModelCost"/> for what is counted). The parameters equal the built network's.
    /// </summary>
    ModelCost Cost();
    /// <summary>The config as a JSON object text (snake_case keys).</summary>
    string ToJson();
}
