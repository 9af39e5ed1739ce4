using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Diffusion;

/// <summary>
/// A denoiser backbone: forward(x (N, C, H, W), t (N), class ids (N)) → the prediction (N, out_channels, H, W) in
/// float32; text models take token ids and a padding mask through <see cref="ForwardText"/>. The samplers, the trainer
/// and the pipeline call a network only through this class, so any backbone that derives from it plugs in.
/// </summary>
public abstract class DenoiserNetwork : nn.Module<Tensor, Tensor, Tensor, Tensor>
{
    /// <summary>Names the module (<paramref name="name"/> is TorchSharp's module name).</summary>
    protected DenoiserNetwork(string name) : base(name) { }

    /// <summary>The config the network was built from.</summary>
    public abstract IBackboneConfig Backbone { get; }

    /// <summary>The dtype of the weights (float32, or the dtype the network was moved to).</summary>
    public abstract ScalarType ParameterDtype { get; }

    /// <summary>The device of the weights.</summary>
    public Device ParameterDevice => parameters().First().device;

    /// <summary>
    /// Text-conditional forward: <paramref name="ids"/> (N, L) int64 token ids and <paramref name="mask"/> (N, L) bool,
    /// true = real token (null = all real). A row without real tokens is the empty caption (the unconditional input).
    /// </summary>
    public abstract Tensor ForwardText(Tensor x, Tensor t, Tensor ids, Tensor? mask);

    /// <summary>
    /// Generator for the label-dropout draws in training mode (classifier-free guidance). Null: torch's default
    /// generator; the trainer sets it per step so a resumed run repeats every draw.
    /// </summary>
    public Generator? LabelDropoutGenerator { get; set; }

    /// <summary>
    /// The label-dropout draws of the next training forward, made by the caller: (N) float32 uniforms on the CPU, one
    /// per row; a row's label is dropped when its draw is below the dropout probability. Overrides
    /// <see cref="LabelDropoutGenerator"/>. The data-parallel trainer draws them for the global batch and hands each
    /// rank its rows, so N ranks drop exactly the labels one process would.
    /// </summary>
    public Tensor? LabelDropoutDraws { get; set; }
}
