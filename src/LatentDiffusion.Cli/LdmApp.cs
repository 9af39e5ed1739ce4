using System.CommandLine;
using LatentDiffusion.Cli.Commands;

namespace LatentDiffusion.Cli;

/// <summary>The `ldm` root command with all its subcommands; Program.cs runs it, tests run it in-process.</summary>
public static class LdmApp
{
    public static RootCommand BuildRoot()
    {
        var root = new RootCommand("ldm: Transformer latent diffusion in .NET — train, sample, evaluate and convert diffusion models.");
        foreach (var command in new[]
        {
            QuickstartCommand.Create(),
            TrainCommand.Create(),
            SampleCommand.Create(),
            EvaluateCommand.Create(),
            TrainClassifierCommand.Create(),
            TrainAutoencoderCommand.Create(),
            EncodeCommand.Create(),
            ConvertCommand.Create(),
            BenchCommand.Create(),
            PlotCommand.Create(),
            CheckShapesCommand.Create(),
            ExportCommand.Create(),
            StudyCommand.Create(),
            ServeCommand.Create(),
        })
            root.Subcommands.Add(command);
        return root;
    }
}
