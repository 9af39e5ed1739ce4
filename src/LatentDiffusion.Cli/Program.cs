using System.CommandLine;
using LatentDiffusion.Cli;
using LatentDiffusion.Cli.Commands;

// ldm: the command-line tool over the LatentDiffusion library. Each command lives in Commands/<Name>Command.cs.
var root = new RootCommand("ldm: Transformer latent diffusion in .NET — train, sample, evaluate and convert diffusion models.");
foreach (var command in new[]
{
    SampleCommand.Create(),
    ConvertCommand.Create(),
    TrainAutoencoderCommand.Create(),
    EncodeCommand.Create(),
})
    root.Subcommands.Add(command);
return CliRunner.Run(root, args);
