using LatentDiffusion.Cli;

// ldm: the command-line tool over the LatentDiffusion library. Commands are listed in LdmApp.BuildRoot;
// each lives in Commands/<Name>Command.cs.
return CliRunner.Run(LdmApp.BuildRoot(), args);
