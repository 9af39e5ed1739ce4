using LatentDiffusion.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests;

/// <summary>The one-buffer layout of parameters and the optimizer, EMA and mixed-precision code that works on it give
/// exactly the numbers of the same arithmetic done parameter by parameter.</summary>
public class FlatParametersTests
{
    static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.dtype == b.dtype && (a == b).all().item<bool>();

    static Tensor Loss(nn.Module model, long seed)
    {
        var g = new Generator((ulong)seed);
        var x = torch.randn([4, 3, 8, 8], generator: g);
        var t = torch.randint(0, 1000, [4], generator: g);
        var y = torch.randint(0, 12, [4], generator: g);
        var out_ = ((Diffusion.DenoiserNetwork)model).forward(x, t, y);
        return (out_ * out_).mean();
    }

    [Fact]
    public void ParametersAndGradientsAreViewsOfTheBuffers()
    {
        using var model = TinyModels.RandomModel(TinyModels.Config());
        using var reference = TinyModels.RandomModel(TinyModels.Config());
        model.eval(); reference.eval(); // no label dropout: both see the same labels
        using var flat = FlatParameters.Of(model);
        Assert.Equal(model.parameters().Where(p => p.requires_grad).Sum(p => p.numel()), flat.Values.numel());

        Loss(model, 5).backward();
        Loss(reference, 5).backward();
        var refGrads = reference.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad);
        for (int i = 0; i < flat.Names.Count; i++)
        {
            using var g = flat.View(flat.Gradients, i);
            Assert.True(Same(refGrads[flat.Names[i]]!, g), $"gradient of {flat.Names[i]}");
        }
        // Writing the buffer writes the parameters.
        using (torch.no_grad()) flat.Values.fill_(0.25f);
        Assert.All(model.named_parameters().Where(p => p.parameter.requires_grad), p => Assert.Equal(0.25f, p.parameter.max().item<float>()));
        // A second backward adds into the same buffer, as autograd does into .grad.
        using (torch.no_grad()) flat.Gradients.zero_();
        Loss(model, 6).backward();
        Assert.True(flat.Gradients.abs().sum().item<float>() > 0);
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(0.05)]
    public void AdamWAndEmaMatchTheParameterByParameterArithmetic(double weightDecay)
    {
        using var model = TinyModels.RandomModel(TinyModels.Config());
        using var reference = TinyModels.RandomModel(TinyModels.Config());
        using var ema = TinyModels.RandomModel(TinyModels.Config());
        using var referenceEma = TinyModels.RandomModel(TinyModels.Config());
        foreach (var p in ema.parameters().Concat(referenceEma.parameters())) p.requires_grad = false;
        model.eval(); reference.eval(); // no label dropout: both see the same labels
        using var opt = AdamW.For(model, lr: 3e-3, weightDecay: weightDecay);
        using var emaLayout = FlatParameters.Of(ema, opt.Parameters.Names);
        var trained = reference.named_parameters().Where(p => p.parameter.requires_grad).ToArray();
        var m = trained.Select(p => torch.zeros_like(p.parameter)).ToArray();
        var v = trained.Select(p => torch.zeros_like(p.parameter)).ToArray();
        for (int step = 1; step <= 3; step++)
        {
            opt.ZeroGrad();
            Loss(model, step).backward();
            opt.StepOnce();
            Ema.Update(emaLayout, opt.Parameters, 0.9);

            foreach (var (_, p) in trained) p.grad?.zero_();
            Loss(reference, step).backward();
            using (torch.no_grad())
            {
                for (int i = 0; i < trained.Length; i++)
                {
                    var p = trained[i].parameter;
                    var g = p.grad!;
                    if (weightDecay != 0) p.mul_(1 - 3e-3 * weightDecay);
                    m[i].mul_(0.9).add_(g, alpha: 1 - 0.9);
                    v[i].mul_(0.999).addcmul_(g, g, value: 1 - 0.999);
                    var denom = v[i].sqrt().div_(Math.Sqrt(1 - Math.Pow(0.999, step))).add_(1e-8);
                    p.addcdiv_(m[i], denom, value: -3e-3 / (1 - Math.Pow(0.9, step)));
                }
            }
            Ema.Update(referenceEma, reference, 0.9);
        }
        var got = model.state_dict();
        foreach (var (name, p) in reference.state_dict()) Assert.True(Same(p, got[name]), $"weight {name}");
        var gotEma = ema.state_dict();
        foreach (var (name, p) in referenceEma.state_dict()) Assert.True(Same(p, gotEma[name]), $"EMA weight {name}");
        var state = opt.StateTensors();
        for (int j = 0; j < trained.Length; j++)
        {
            Assert.True(Same(m[j], state["exp_avg." + trained[j].name]), $"exp_avg of {trained[j].name}");
            Assert.True(Same(v[j], state["exp_avg_sq." + trained[j].name]), $"exp_avg_sq of {trained[j].name}");
        }
    }

    [Fact]
    public void MixedPrecisionCopiesWeightsDownAndGradientsUpInOneBufferEach()
    {
        using var model = TinyModels.RandomModel(TinyModels.Config());
        using var opt = AdamW.For(model);
        using var mixed = new MixedPrecision(opt.Parameters, TinyModels.RandomModel(TinyModels.Config(), seed: 9));
        var master = model.state_dict();
        foreach (var (name, c) in mixed.Compute.state_dict())
            Assert.True(c.dtype != ScalarType.BFloat16 || Same(master[name].to(ScalarType.BFloat16), c), $"bf16 copy of {name}");
        mixed.Compute.eval();
        Loss(mixed.Compute, 3).backward();
        var computeGrads = mixed.Compute.named_parameters().Where(p => p.parameter.requires_grad)
            .ToDictionary(p => p.name, p => p.parameter.grad!.to(ScalarType.Float32));
        mixed.CopyGradientsToMaster();
        foreach (var (name, p) in model.named_parameters().Where(p => p.parameter.requires_grad))
            Assert.True(Same(computeGrads[name], p.grad!), $"master gradient of {name}");
        Assert.All(mixed.Compute.parameters().Where(p => p.requires_grad), p => Assert.Equal(0f, p.grad!.abs().max().to(ScalarType.Float32).item<float>()));
    }
}
