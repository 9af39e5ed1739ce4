using LatentDiffusion.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests;

/// <summary>The one-buffer layout of parameters and the optimizer, EMA and mixed-precision code that works on it give
/// the numbers of the same arithmetic done parameter by parameter (AdamW's fused CPU pass to float rounding, the rest
/// exactly), and the fused pass does not depend on how many threads share it.</summary>
public class FlatParametersTests
{
    /// <summary>Equal to float rounding: the fused CPU update orders its operations unlike the tensor operations.</summary>
    static bool Close(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && (a - b).abs().max().item<float>() <= 1e-6f + 1e-5f * b.abs().max().item<float>();

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
        using var ema = TinyModels.RandomModel(TinyModels.Config(), seed: 4);
        using var referenceEma = TinyModels.RandomModel(TinyModels.Config(), seed: 4);
        foreach (var p in ema.parameters().Concat(referenceEma.parameters())) p.requires_grad = false;
        using var opt = AdamW.For(model, lr: 3e-3, weightDecay: weightDecay);
        using var emaLayout = FlatParameters.Of(ema, opt.Parameters.Names);
        var trained = reference.named_parameters().Where(p => p.parameter.requires_grad).ToArray();
        // A state in mid-run: random moments after 5 steps and a random gradient, the same on both sides.
        var g = new Generator(8);
        var m = trained.Select(p => torch.randn(p.parameter.shape, generator: g) * 0.01).ToArray();
        var v = trained.Select(p => torch.rand(p.parameter.shape, generator: g) * 1e-4).ToArray();
        var grads = trained.Select(p => torch.randn(p.parameter.shape, generator: g) * 0.01).ToArray();
        var state = new Dictionary<string, Tensor> { ["step"] = torch.tensor(5L) };
        for (int i = 0; i < trained.Length; i++) { state["exp_avg." + trained[i].name] = m[i]; state["exp_avg_sq." + trained[i].name] = v[i]; }
        opt.LoadState(state, "test");
        for (int i = 0; i < trained.Length; i++)
            using (var view = opt.Parameters.View(opt.Parameters.Gradients, opt.Parameters.Names.ToList().IndexOf(trained[i].name)))
            using (torch.no_grad()) view.copy_(grads[i]);

        opt.StepOnce();
        Ema.Update(emaLayout, opt.Parameters, 0.9);

        using (torch.no_grad())
        {
            const int step = 6;
            for (int i = 0; i < trained.Length; i++)
            {
                var p = trained[i].parameter;
                if (weightDecay != 0) p.mul_(1 - 3e-3 * weightDecay);
                m[i] = m[i] * 0.9 + grads[i] * (1 - 0.9);
                v[i] = v[i] * 0.999 + grads[i] * grads[i] * (1 - 0.999);
                var denom = v[i].sqrt() / Math.Sqrt(1 - Math.Pow(0.999, step)) + 1e-8;
                p.sub_(m[i] / denom * (3e-3 / (1 - Math.Pow(0.9, step))));
            }
        }
        Ema.Update(referenceEma, model, 0.9);

        var got = model.state_dict();
        foreach (var (name, p) in reference.state_dict()) Assert.True(Close(got[name], p), $"weight {name}");
        var gotEma = ema.state_dict();
        foreach (var (name, p) in referenceEma.state_dict()) Assert.True(Same(gotEma[name], p), $"EMA weight {name}");
        var saved = opt.StateTensors();
        for (int j = 0; j < trained.Length; j++)
        {
            Assert.True(Close(saved["exp_avg." + trained[j].name], m[j]), $"exp_avg of {trained[j].name}");
            Assert.True(Close(saved["exp_avg_sq." + trained[j].name], v[j]), $"exp_avg_sq of {trained[j].name}");
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

    [Fact]
    public void TheFusedUpdateGivesTheSameBitsWithOneThreadOrTwo()
    {
        Tensor Train(int threads)
        {
            int before = torch.get_num_threads();
            torch.set_num_threads(threads);
            try
            {
                // A parameter count that is not a multiple of any vector width, large enough to be split.
                var w = nn.Parameter(torch.randn([300_007], generator: new Generator(1)));
                using var module = new Holder(w);
                using var opt = AdamW.For(module, lr: 1e-2, weightDecay: 0.1);
                var g = new Generator(2);
                for (int step = 0; step < 4; step++)
                {
                    opt.ZeroGrad();
                    using (torch.no_grad()) opt.Parameters.Gradients.copy_(torch.randn([300_007], generator: g));
                    opt.StepOnce();
                }
                return w.detach().clone();
            }
            finally { torch.set_num_threads(before); }
        }
        Assert.True(Same(Train(1), Train(2)));
    }

    sealed class Holder : nn.Module
    {
        public Holder(TorchSharp.Modules.Parameter w) : base("holder") { register_parameter("w", w); }
    }
}
