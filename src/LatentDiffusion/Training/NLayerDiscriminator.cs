using LatentDiffusion.Layers;
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
internal sealed class NLayerDiscriminator : nn.Module<Tensor, Tensor>
{
    readonly Sequential main;

    public NLayerDiscriminator(int inChannels, int ndf = 64, int layers = 3, Generator? init = null) : base(nameof(NLayerDiscriminator))
    {
        if (layers < 1) throw new LdmException($"the discriminator needs at least 1 layer, got {layers}; give 1 or more (AutoencoderTrainingOptions.DiscriminatorLayers).");
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

        // All draws from `init` (not the process-wide RNG), so the discriminator depends on its seed only. Drawn with
        // torch.randn/rand and copied: TorchSharp 0.107's nn.init.normal_/uniform_ ignore their generator argument.
        using var _ = torch.no_grad();
        init ??= new Generator(0);
        void Normal(Tensor t, double mean, double std) { using var r = torch.randn(t.shape, generator: init, device: torch.CPU); t.copy_(r * std + mean); }
        void Uniform(Tensor t, double bound) { using var r = torch.rand(t.shape, generator: init, device: torch.CPU); t.copy_(r * (2 * bound) - bound); }
        foreach (var m in main.children())
        {
            if (m is Conv2d conv)
            {
                Normal(conv.weight!, 0.0, 0.02);
                if (conv.bias is { } b)
                {
                    double bound = 1.0 / Math.Sqrt(conv.weight!.shape[1] * conv.weight.shape[2] * conv.weight.shape[3]);
                    Uniform(b, bound); // PyTorch's default conv bias
                }
            }
            else if (m is BatchNorm2d bn)
            {
                Normal(bn.weight!, 1.0, 0.02);
                nn.init.zeros_(bn.bias!);
            }
        }
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        var layers = main.children().Cast<nn.Module<Tensor, Tensor>>().ToList();
        var h = x;
        // Convs go through NarrowConv: their input gradients feed the generator loss, and narrow ones (the one-channel
        // logit conv, small ndf) hit libtorch's faulty backward otherwise (see NarrowConv).
        foreach (var layer in layers) h = layer is Conv2d conv ? NarrowConv.Forward(conv, h) : layer.forward(h);
        return h.MoveToOuterDisposeScope();
    }
}
