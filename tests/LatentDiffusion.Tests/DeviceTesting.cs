using LatentDiffusion.Diffusion;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests;

/// <summary>
/// Device-correctness checks without a GPU. The model and its inputs stay on the CPU, with real values, while
/// torch's default device is libtorch's <c>meta</c> device (shapes, no values; see <see cref="ImplicitDeviceTrap"/>).
/// A tensor that library code creates without naming a device lands on meta: the first operator that combines it
/// with the model's CPU tensors fails ("Expected all tensors to be on the same device"), reading or copying it fails
/// ("no data"), and one that is returned fails the device assertions here. Code that passes creates its tensors on
/// the device of its inputs or modules (or draws on the CPU on purpose and moves the draw), as CUDA needs.
/// </summary>
public static class DeviceTesting
{
    /// <summary>A device that is not the CPU and needs no GPU.</summary>
    public static Device Meta => new(DeviceType.META);

    public static void AssertOn(Device expected, params Tensor?[] tensors)
    {
        foreach (var t in tensors)
        {
            Assert.NotNull(t);
            Assert.Equal(expected.type, t!.device_type);
        }
    }

    /// <summary>Every parameter (and, when <paramref name="withGradients"/>, every trainable parameter's gradient) is on <paramref name="expected"/>.</summary>
    public static void AssertModuleOn(Device expected, nn.Module module, bool withGradients = false)
    {
        foreach (var (name, p) in module.named_parameters())
        {
            Assert.True(p.device_type == expected.type, $"parameter {name} is on {p.device}, expected {expected}");
            if (withGradients && p.requires_grad)
                Assert.True(p.grad is { } g && g.device_type == expected.type, $"gradient of {name} is missing or not on {expected}");
        }
    }

    /// <summary>The denoiser, asserting that the sampler gives it x and t on <paramref name="expected"/> and that its output is there.</summary>
    public static Denoiser Checked(Denoiser inner, Device expected) => (x, t) =>
    {
        AssertOn(expected, x, t);
        var output = inner(x, t);
        AssertOn(expected, output);
        return output;
    };

    /// <summary>A CPU generator, named so: the library's seeded draws are made on the CPU (docs/devices.md).</summary>
    public static Generator CpuGenerator(ulong seed) => new(seed, torch.CPU);

    /// <summary>Uniform [-1, 1) images (N, C, size, size) on the CPU.</summary>
    public static Tensor Images(long n, long c, long size, ulong seed = 1)
    {
        using var g = CpuGenerator(seed);
        using var u = torch.rand([n, c, size, size], device: torch.CPU, generator: g);
        return u * 2 - 1;
    }
}

/// <summary>
/// Makes the meta device torch's default device until disposed (see <see cref="DeviceTesting"/>). The default
/// device is process-wide, so tests that use the trap are in the <see cref="DefaultDeviceCollection"/>, which runs alone.
/// Build modules before setting the trap: modules follow the default device too.
/// </summary>
public sealed class ImplicitDeviceTrap : IDisposable
{
    readonly Device _previous = torch.get_default_device();

    public ImplicitDeviceTrap() => torch.set_default_device(DeviceTesting.Meta);

    public void Dispose() => torch.set_default_device(_previous);
}

/// <summary>Tests that change torch's process-wide default device; run after, not beside, the other tests.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class DefaultDeviceCollection
{
    public const string Name = "default device";
}
