using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LatentDiffusion.Layers;

/// <summary>
/// Cuts an image into non-overlapping patch×patch squares and projects each to a token:
/// <c>proj</c> is a Conv2d with kernel = stride = patch; (N, C, H, W) → (N, T, D), T = (H/p)·(W/p), row-major.
/// </summary>
internal sealed class PatchEmbed : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d proj;

    public int PatchSize { get; }

    public PatchEmbed(int inChannels, int embedDim, int patchSize) : base(nameof(PatchEmbed))
    {
        PatchSize = patchSize;
        proj = nn.Conv2d(inChannels, embedDim, kernel_size: patchSize, stride: patchSize);
        RegisterComponents();
    }

    public Conv2d Proj => proj;

    public override Tensor forward(Tensor x)
    {
        using var projected = proj.forward(x);      // (N, D, H/p, W/p)
        using var flat = projected.flatten(2);       // (N, D, T)
        return flat.transpose(1, 2);                 // (N, T, D)
    }
}
