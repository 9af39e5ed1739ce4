using static TorchSharp.torch;

namespace LatentDiffusion.Cli.Grammar;

/// <summary>
/// <c>--device cpu|cuda|cuda:N|auto</c>: the library's <see cref="Devices.Parse"/>, its errors prefixed with the flag.
/// </summary>
public static class DeviceNames
{
    public const string List = Devices.Choices;

    public static Device Parse(string? text)
    {
        try { return Devices.Parse(text); }
        catch (LdmException e) { throw new LdmException($"--device {text?.Trim()}: {e.Message}", e); }
    }
}
