using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LatentDiffusion.UNets;

/// <summary>
/// The UNet's residual block, conditioned on the time embedding: <c>in_layers</c> (norm, SiLU, 3×3 conv),
/// <c>emb_layers</c> (SiLU, Linear) added per channel — or, with scale-shift norm, (1 + scale)·norm(h) + shift —
/// then <c>out_layers</c> (norm, SiLU, dropout, 3×3 conv), plus the input through <c>skip_connection</c> (a 1×1 conv
/// when the width changes). With <c>up</c>/<c>down</c> it also resamples, between in_layers' activation and its conv.
/// </summary>
internal sealed class ResBlock : nn.Module<Tensor, Tensor, Tensor>
{
    readonly Sequential in_layers, emb_layers, out_layers;
    readonly Conv2d? skip_connection;
    readonly nn.Module<Tensor, Tensor>? h_upd, x_upd;
    readonly bool useScaleShiftNorm;

    public int OutChannels { get; }

    public ResBlock(int channels, int embChannels, double dropout, int? outChannels = null, bool useScaleShiftNorm = false,
        bool up = false, bool down = false) : base(nameof(ResBlock))
    {
        int outCh = outChannels ?? channels;
        OutChannels = outCh;
        this.useScaleShiftNorm = useScaleShiftNorm;
        in_layers = nn.Sequential(
            ("0", new GroupNorm32(channels)),
            ("1", nn.SiLU()),
            ("2", nn.Conv2d(channels, outCh, kernel_size: 3, padding: 1)));
        if (up) { h_upd = new Upsample(channels, useConv: false); x_upd = new Upsample(channels, useConv: false); }
        else if (down) { h_upd = new Downsample(channels, useConv: false); x_upd = new Downsample(channels, useConv: false); }
        emb_layers = nn.Sequential(
            ("0", nn.SiLU()),
            ("1", nn.Linear(embChannels, useScaleShiftNorm ? 2 * outCh : outCh)));
        out_layers = nn.Sequential(
            ("0", new GroupNorm32(outCh)),
            ("1", nn.SiLU()),
            ("2", nn.Dropout(dropout)),
            ("3", nn.Conv2d(outCh, outCh, kernel_size: 3, padding: 1)));
        if (outCh != channels) skip_connection = nn.Conv2d(channels, outCh, kernel_size: 1);
        RegisterComponents();
    }

    /// <summary>The last conv of the residual branch (zero-initialised, so a new block is the identity on its skip path).</summary>
    public Conv2d OutConv => (Conv2d)out_layers[3];

    static Tensor Layer(Sequential sequence, int index, Tensor x) => ((nn.Module<Tensor, Tensor>)sequence[index]).forward(x);

    static Tensor Resample(nn.Module<Tensor, Tensor> resampler, Tensor x, long[]? upsampleTo) =>
        resampler is Upsample up && upsampleTo is not null ? up.forward(x, upsampleTo) : resampler.forward(x);

    /// <param name="x">(N, C, H, W) features.</param>
    /// <param name="emb">(N, emb_channels) time (and label) embedding.</param>
    public override Tensor forward(Tensor x, Tensor emb) => forward(x, emb, null);

    /// <param name="x">(N, C, H, W) features.</param>
    /// <param name="emb">(N, emb_channels) time (and label) embedding.</param>
    /// <param name="upsampleTo">For an up-sampling block, the (H, W) to reach (null: twice the input); ignored otherwise.</param>
    public Tensor forward(Tensor x, Tensor emb, long[]? upsampleTo)
    {
        using var scope = NewDisposeScope();
        Tensor h;
        if (h_upd is not null)
        {
            h = Layer(in_layers, 1, Layer(in_layers, 0, x));
            h = ((Conv2d)in_layers[2]).forward(Resample(h_upd, h, upsampleTo));
            x = Resample(x_upd!, x, upsampleTo);
        }
        else h = in_layers.forward(x);
        var e = emb_layers.forward(emb).to(h.dtype).unsqueeze(-1).unsqueeze(-1);
        if (useScaleShiftNorm)
        {
            var parts = e.chunk(2, 1);
            h = ((GroupNorm32)out_layers[0]).forward(h) * (parts[0] + 1) + parts[1];
            for (int i = 1; i < 4; i++) h = Layer(out_layers, i, h);
        }
        else h = out_layers.forward(h + e);
        var skip = skip_connection is null ? x : skip_connection.forward(x);
        return (skip + h).MoveToOuterDisposeScope();
    }
}
