using System.CommandLine;

namespace LatentDiffusion.Cli.Commands;

/// <summary>`ldm sample`: generate images (or latents) from a checkpoint.</summary>
public static class SampleCommand
{
    public static Command Create()
    {
        var command = new Command("sample", "Generate samples from a trained diffusion model checkpoint.");
        command.SetAction(_ => { Console.WriteLine("not yet"); return 0; });
        return command;
    }
}
