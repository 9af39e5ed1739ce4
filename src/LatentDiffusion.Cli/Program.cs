using LatentDiffusion.Cli;
using LatentDiffusion.Diagnostics;

// ldm: the command-line tool over the LatentDiffusion library; the commands are listed in LdmApp.
// The native runtime is configured before the first TorchSharp call: OpenMP reads its environment only once.
NativeRuntime.ConfigureForCpuWork();
return CliRunner.Run(LdmApp.BuildRoot(), args);
