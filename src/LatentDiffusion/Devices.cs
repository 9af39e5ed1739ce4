using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion;

/// <summary>
/// The device the user chose for models and tensors: <c>cpu</c>, <c>cuda</c>, <c>cuda:N</c> or <c>auto</c> (cuda when
/// libtorch sees a GPU, else cpu). The library creates every tensor on the device of its inputs or module, so
/// choosing a device is moving the model there (<c>model.to(device)</c>) and passing inputs on it.
/// </summary>
public static class Devices
{
    /// <summary>The names <see cref="Parse"/> accepts, for help texts.</summary>
    public const string Choices = "cpu, cuda, cuda:N or auto";

    /// <summary>True when the libtorch build in the application has CUDA and a GPU is visible.</summary>
    public static bool CudaAvailable => torch.cuda.is_available();

    /// <summary>cuda when available, else cpu.</summary>
    public static Device Auto => CudaAvailable ? new Device(DeviceType.CUDA, 0) : torch.CPU;

    /// <summary>
    /// The device named by <paramref name="name"/> (case-insensitive; null or empty = cpu). A cuda request without
    /// CUDA, or a GPU index that does not exist, is an <see cref="LdmException"/> saying how to get it.
    /// </summary>
    public static Device Parse(string? name)
    {
        var text = (name ?? "").Trim().ToLowerInvariant();
        if (text is "" or "cpu") return torch.CPU;
        if (text == "auto") return Auto;
        if (text == "cuda" || text.StartsWith("cuda:", StringComparison.Ordinal))
        {
            int index = 0;
            if (text.Length > 4 && (!int.TryParse(text[5..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out index)))
                throw new LdmException($"unknown device '{name}'; use {Choices} (N = GPU index, e.g. cuda:0).");
            if (!CudaAvailable)
                throw new LdmException($"device '{name}' asks for CUDA, but CUDA is not available here (no GPU, or the CPU build of libtorch, as ldm ships); " +
                    "reference the CUDA build of libtorch (the TorchSharp-cuda-linux or TorchSharp-cuda-windows package of the same TorchSharp version, instead of TorchSharp-cpu) and an NVIDIA driver, or run on the cpu.");
            int count = torch.cuda.device_count();
            if (index >= count)
                throw new LdmException($"device '{name}' does not exist: libtorch sees {count} GPU(s), cuda:0..cuda:{count - 1}; pick one of those.");
            return new Device(DeviceType.CUDA, index);
        }
        throw new LdmException($"unknown device '{name}'; use {Choices}.");
    }

    /// <summary>The device of a module's first parameter or buffer (cpu for a module without any).</summary>
    public static Device Of(nn.Module module)
    {
        foreach (var p in module.parameters()) return p.device;
        foreach (var b in module.buffers()) return b.device;
        return torch.CPU;
    }
}
