using LatentDiffusion.UNets;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests;

/// <summary>
/// Regression tests for the UNet's non-finite gradients in long-lived processes: libtorch's CPU conv backward read
/// uninitialised memory for the final conv <c>out.2</c> (few output channels), so every gradient from <c>out.0</c>
/// inward became NaN whenever that memory held NaN from freed tensors (see <see cref="LatentDiffusion.Layers.NarrowConv"/>).
/// Here every new allocation is NaN-filled (<see cref="JunkFilledAllocations"/>), which reproduced the bug on every
/// run; the gradients must be finite and equal those computed on clean memory.
/// </summary>
[Collection(JunkFilledAllocationsCollection.Name)]
public class UNetBackwardTests
{
    [Theory]
    [InlineData("class", false)]
    [InlineData("class", true)]
    [InlineData("scale-shift, resblock up/down", false)]
    [InlineData("scale-shift, resblock up/down", true)]
    [InlineData("text", false)]
    [InlineData("text", true)]
    public void GradientsOnNaNFilledMemoryAreFiniteAndThoseOfCleanMemory(string variant, bool randomised)
    {
        var cfg = variant switch
        {
            "class" => TinyUNets.Config(),
            "text" => TinyUNets.TextConfig(),
            _ => TinyUNets.Config() with { UseScaleShiftNorm = true, ResblockUpdown = true },
        };
        // A new model (zero-initialised out.2: the first training step) and one with every layer non-zero.
        using var model = randomised ? TinyUNets.RandomModel(cfg) : new UNetModel(cfg, seed: 3);
        model.eval();
        using var scope = NewDisposeScope();
        var g = new Generator(11, torch.CPU);
        var x = randn(new long[] { 2, 3, 8, 8 }, generator: g);
        var t = tensor(new long[] { 5, 800 });
        var y = tensor(new long[] { 2, 12 });
        var ids = tensor(new long[,] { { 3, 4, 0 }, { 7, 0, 0 } });
        var mask = tensor(new bool[,] { { true, true, false }, { true, false, false } });
        Tensor Output() => cfg.Text is null ? model.Forward(x, t, null, y) : model.ForwardText(x, t, ids, mask);

        var clean = Gradients(model, Output);
        Dictionary<string, Tensor> poisoned;
        using (new JunkFilledAllocations()) poisoned = Gradients(model, Output);

        Assert.Equal(clean.Keys, poisoned.Keys);
        foreach (var (name, grad) in poisoned)
        {
            Assert.True(grad.isfinite().all().item<bool>(), $"{variant}: gradient of {name} is not finite on NaN-filled memory");
            Assert.True(grad.allclose(clean[name], rtol: 1e-5, atol: 1e-7), $"{variant}: gradient of {name} differs between clean and NaN-filled memory");
            // With out.2 zero no gradient reaches the layers before it: exactly zero, whatever the memory held.
            if (!randomised && !name.StartsWith("out.2.", StringComparison.Ordinal))
                Assert.True(grad.count_nonzero().item<long>() == 0, $"{variant}: gradient of {name} should be zero behind the zero-initialised out.2");
        }
    }

    /// <summary>The gradients of a loss on the model's output (parameters the batch does not use have none), on fresh gradient buffers.</summary>
    static Dictionary<string, Tensor> Gradients(UNetModel model, Func<Tensor> output)
    {
        foreach (var p in model.parameters()) p.grad = null;
        using (var scope = NewDisposeScope())
        {
            var o = output();
            ((o * o).mean() + o.mean()).backward();
        }
        return model.named_parameters().Where(p => p.parameter.grad is not null).ToDictionary(p => p.name, p => p.parameter.grad!.clone());
    }
}
