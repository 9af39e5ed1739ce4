using System.Globalization;

namespace LatentDiffusion.Diffusion;

/// <summary>
/// Parameters and forward FLOPs of one image through a backbone, counted from the layer shapes of its config (never
/// by timing). Every backbone counts itself in one place (<see cref="IBackboneConfig.Cost"/>: the Transformer's
/// <c>TransformerCost</c>, the UNet's <c>UNetCost</c>), walking its layers as its constructor builds them.
/// <para>Convention: a multiply-add is 2 FLOPs. Counted exactly: every matrix product of a Linear, every convolution
/// (1×1 and k×k, including the patch embedding), both attention products QKᵀ and AV over every query/key pair (padded
/// text positions included, since the network computes them too), and the per-image vectors (timestep MLP, adaLN
/// modulation, a ResBlock's embedding projection). Left out: biases, norms, activations, softmax, embedding
/// lookups, resampling (nearest upsampling, average pooling) and every other elementwise operation — together well
/// under 1% of the total for the presets. The count is of one network evaluation: classifier-free guidance doubles
/// it per sampling step.</para>
/// <para>DiT's and fvcore's "Gflops" count a multiply-add as one: divide <see cref="ForwardFlops"/> by 2 to compare
/// (DiT-S/2 at 256×256: 6.06 there, 12.1 GFLOPs here).</para>
/// </summary>
/// <param name="Parameters">Every parameter of the built network, frozen ones included (as <c>parameters().Sum(numel)</c>).</param>
/// <param name="ForwardFlops">FLOPs of one forward pass of one image (2 per multiply-add).</param>
public sealed record ModelCost(long Parameters, double ForwardFlops)
{
    /// <summary>Metadata key of <see cref="Parameters"/> in a denoiser checkpoint (an integer as text).</summary>
    public const string ParametersKey = "ldm.cost.parameters";
    /// <summary>Metadata key of <see cref="ForwardFlops"/> in a denoiser checkpoint (a number as text, invariant culture).</summary>
    public const string ForwardFlopsKey = "ldm.cost.forward_flops";

    /// <summary>The cost of a backbone, computed from its config without building the network.</summary>
    public static ModelCost Of(IBackboneConfig backbone) =>
        (backbone ?? throw new ArgumentNullException(nameof(backbone))).Cost();

    /// <summary>Forward and backward of one image: ≈ 3× the forward (the backward costs about twice the forward), the
    /// convention of DiT and of Kaplan et al.'s scaling laws.</summary>
    public double TrainingFlopsPerImage => 3 * ForwardFlops;

    /// <summary>The part of <see cref="ForwardFlops"/> spent in the attention products QKᵀ and AV.</summary>
    public double AttentionFlops { get; init; }

    /// <summary><see cref="ForwardFlops"/> in units of 10⁹.</summary>
    public double ForwardGFlops => ForwardFlops / 1e9;

    /// <summary><see cref="TrainingFlopsPerImage"/> in units of 10⁹.</summary>
    public double TrainingGFlopsPerImage => TrainingFlopsPerImage / 1e9;

    /// <summary>One line for logs and tables: <c>22,043,168 parameters, 12.34 GFLOPs forward per image</c>.</summary>
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"{Parameters:N0} parameters, {ForwardGFlops:F2} GFLOPs forward per image");

    /// <summary>A FLOP count with an SI prefix and four significant digits: <c>12.19 GFLOPs</c>, <c>359.4 kFLOPs</c>.</summary>
    public static string FormatFlops(double flops)
    {
        (double scale, string prefix) = Math.Abs(flops) switch
        {
            >= 1e15 => (1e15, "P"), >= 1e12 => (1e12, "T"), >= 1e9 => (1e9, "G"), >= 1e6 => (1e6, "M"), >= 1e3 => (1e3, "k"), _ => (1.0, ""),
        };
        return string.Create(CultureInfo.InvariantCulture, $"{flops / scale:G4} {prefix}FLOPs");
    }

    /// <summary>The cost as checkpoint metadata entries (<see cref="ParametersKey"/>, <see cref="ForwardFlopsKey"/>).</summary>
    public IReadOnlyDictionary<string, string> ToMetadata() => new Dictionary<string, string>
    {
        [ParametersKey] = Parameters.ToString(CultureInfo.InvariantCulture),
        [ForwardFlopsKey] = ForwardFlops.ToString("R", CultureInfo.InvariantCulture),
    };

    /// <summary>
    /// The cost stored in checkpoint metadata, or null when the file has none (written before costs were stored) or
    /// the entries are not numbers; the config always allows <see cref="Of"/> instead. <see cref="AttentionFlops"/> is
    /// not stored: it reads as 0.
    /// </summary>
    public static ModelCost? FromMetadata(IReadOnlyDictionary<string, string> metadata)
    {
        if (!metadata.TryGetValue(ParametersKey, out var p) || !metadata.TryGetValue(ForwardFlopsKey, out var f)) return null;
        return long.TryParse(p, NumberStyles.Integer, CultureInfo.InvariantCulture, out long parameters)
            && double.TryParse(f, NumberStyles.Float, CultureInfo.InvariantCulture, out double flops)
            ? new ModelCost(parameters, flops) : null;
    }
}
