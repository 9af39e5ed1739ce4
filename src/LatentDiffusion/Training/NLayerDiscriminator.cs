using LatentDiffusion.Autoencoders;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LatentDiffusion.Training;

/// <summary>
/// PatchGAN discriminator of pix2pix as used by LDM's autoencoder loss (taming-transformers' NLayerDiscriminator):
/// 4×4 convs, the first <c>layers</c> with stride 2 (channel width doubling up to 8·ndf), BatchNorm and LeakyReLU(0.2),
/// ending in a one-channel map of real/fake logits, one per image patch. Initialised as in taming: conv weights
/// N(0, 0.02), BatchNorm scales N(1, 0.02), shifts 0.
/// </summary>
public sealed class NLayerDiscriminator : nn.Module<Tensor, Tensor>
{
    readonly Sequential main;

    public NLayerDiscriminator(int inChannels, int ndf = 64, int layers = 3, Generator? init = null) : base(nameof(NLayerDiscriminator))
    {
        if (layers < 1) throw new LdmException($"the discriminator needs at least 1 layer, got {layers}; pass --disc-layers 1 or more.");
        var items = new List<(string, nn.Module<Tensor, Tensor>)>();
        void Add(nn.Module<Tensor, Tensor> m) => items.Add((items.Count.ToString(), m));
        Add(nn.Conv2d(inChannels, ndf, kernel_size: 4, stride: 2, padding: 1));
        Add(nn.LeakyReLU(0.2, inplace: true));
        int mult = 1;
        for (int n = 1; n <= layers; n++)
        {
            int prev = mult;
            mult = Math.Min(1 << n, 8);
            int stride = n < layers ? 2 : 1; // the last block keeps the resolution
            Add(nn.Conv2d(ndf * prev, ndf * mult, kernel_size: 4, stride: stride, padding: 1, bias: false));
            Add(nn.BatchNorm2d(ndf * mult));
            Add(nn.LeakyReLU(0.2, inplace: true));
        }
        Add(nn.Conv2d(ndf * mult, 1, kernel_size: 4, stride: 1, padding: 1));
        main = nn.Sequential(items);
        RegisterComponents();

        using var _ = torch.no_grad();
        foreach (var (name, p) in named_parameters())
        {
            bool batchNorm = p.dim() == 1 && named_modules().Any(m => m.module is BatchNorm2d && name.StartsWith(m.name + "."));
            if (p.dim() == 4) nn.init.normal_(p, 0.0, 0.02, init);
            else if (batchNorm && name.EndsWith("weight")) nn.init.normal_(p, 1.0, 0.02, init);
            else if (batchNorm) nn.init.zeros_(p);
        }
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        var layers = main.children().Cast<nn.Module<Tensor, Tensor>>().ToList();
        var h = x;
        for (int i = 0; i < layers.Count - 1; i++) h = layers[i].forward(h);
        // The one-channel logit conv: its input gradient feeds the generator loss (see NarrowConv for why this path).
        h = NarrowConv.Forward((Conv2d)layers[^1], h);
        return h.MoveToOuterDisposeScope();
    }
}
