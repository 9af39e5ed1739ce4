using LatentDiffusion.Cli;
using LatentDiffusion.Diagnostics;

// ldm: the command-line tool over the LatentDiffusion library; the commands are listed in LdmApp.
// The native runtime is configured before the first TorchSharp call: OpenMP reads its environment only once.
// Under mpiexec.mpich every rank runs this same program (Ranks: who prints, threads per rank, MPI set-up).
NativeRuntime.ConfigureForCpuWork();
return Ranks.Run(() => CliRunner.Run(LdmApp.BuildRoot(), args));
