using System.Globalization;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Cli.Grammar;

/// <summary>
/// <c>--device cpu|cuda|cuda:N|auto</c> into TorchSharp's <see cref="Device"/>, in one place. <c>auto</c> is CUDA when
/// libtorch sees a GPU, else the CPU; asking for CUDA where there is none is a user error, not a crash later.
/// </summary>
public static class DeviceNames
{
    public const string List = "cpu, cuda, cuda:N or auto";

    public static Device Parse(string? text)
    {
        string s = (text ?? "").Trim().ToLowerInvariant();
        if (s == "cpu") return CPU;
        if (s == "auto") return cuda.is_available() ? CUDA : CPU;
        if (s != "cuda" && !s.StartsWith("cuda:", StringComparison.Ordinal))
            throw new LdmException($"--device '{text}' is not a device; write {List}.");
        int index = 0;
        if (s.Length > 4 && !int.TryParse(s[5..], NumberStyles.None, CultureInfo.InvariantCulture, out index))
            throw new LdmException($"--device '{text}' has no GPU number after 'cuda:'; write cuda or cuda:N (N = 0, 1, ...).");
        if (!cuda.is_available())
            throw new LdmException($"--device {s}: CUDA is not available here (no GPU, or a CPU build of libtorch, as ldm ships); use --device cpu or auto.");
        int count = cuda.device_count();
        if (index >= count)
            throw new LdmException($"--device {s}: there {(count == 1 ? "is 1 GPU" : $"are {count} GPUs")}; use cuda:0{(count > 1 ? $" to cuda:{count - 1}" : "")}.");
        return new Device(DeviceType.CUDA, index);
    }
}
