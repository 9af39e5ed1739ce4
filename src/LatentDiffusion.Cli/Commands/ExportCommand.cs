using System.CommandLine;
using LatentDiffusion.IO;
using LatentDiffusion.Text;
using LatentDiffusion.Denoisers;
using LatentDiffusion.Diffusion;

namespace LatentDiffusion.Cli.Commands;

/// <summary>
/// `ldm export`: a trained denoiser and its autoencoder into a folder of models (such as <c>models/</c>): the model under
/// a new name, its autoencoder beside it under the name the model now records, optionally stored as bf16/f16.
/// </summary>
public static class ExportCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model", "-m") { Description = "The denoiser to export (a run's model.safetensors).", Required = true };
        var autoencoder = new Option<string?>("--autoencoder", "-a") { Description = "Latent models: its autoencoder (default: the one it names, beside it)." };
        var output = new Option<string>("--out", "-o") { Description = "The exported model file.", Required = true };
        var aeName = new Option<string?>("--autoencoder-name") { Description = "File name of the autoencoder beside the exported model (default: MODEL-autoencoder.safetensors)." };
        var dtype = new Option<string>("--dtype") { Description = "Storage precision of the denoiser: float32, bf16 or f16 (loaded back as float32).", DefaultValueFactory = _ => "float32" };
        var guidance = new Option<double?>("--guidance", "-g") { Description = "Store this guidance scale as the model's recommended one (1 = none)." };
        var sampler = new Option<string?>("--sampler") { Description = "Store this sampler (ddim, ddpm or dpm++2m) as the model's recommended one." };
        var steps = new Option<int?>("--steps") { Description = "Store this step count as the model's recommended one." };
        var command = new Command("export", "Copy a trained model and its autoencoder into a models folder, the model naming the autoencoder beside it; optionally set its recommended sampling settings.")
        { model, autoencoder, output, aeName, dtype, guidance, sampler, steps };
        command.SetAction(p =>
        {
            string src = CliParsing.ExistingFile(p.GetValue(model)!, "--model");
            string dst = p.GetValue(output)!;
            if (!dst.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
                throw new LdmException($"--out '{dst}' must be a .safetensors file.");
            var storage = p.GetValue(dtype)!.Trim().ToLowerInvariant() switch
            {
                "float32" or "f32" => (TorchSharp.torch.ScalarType?)null,
                "bf16" or "bfloat16" => TorchSharp.torch.ScalarType.BFloat16,
                "f16" or "float16" => TorchSharp.torch.ScalarType.Float16,
                var other => throw new LdmException($"--dtype '{other}' is unknown; use float32, bf16 or f16."),
            };
            string dir = Path.GetDirectoryName(Path.GetFullPath(dst))!;
            Directory.CreateDirectory(dir);
            var info = DenoiserCheckpoint.PeekInfo(src);
            string? aeName1 = null;
            if (!info.IsPixelSpace)
            {
                string ae = p.GetValue(autoencoder) is { } a ? CliParsing.ExistingFile(a, "--autoencoder")
                    : info.AutoencoderBeside(src) ?? throw new LdmException($"'{src}' names no autoencoder beside it; pass --autoencoder.");
                aeName1 = p.GetValue(aeName) ?? Path.GetFileNameWithoutExtension(dst) + "-autoencoder.safetensors";
                if (aeName1.Contains('/') || aeName1.Contains('\\')) throw new LdmException("--autoencoder-name is a file name, not a path; the autoencoder goes beside the model.");
                string aeDst = Path.Combine(dir, aeName1);
                if (Path.GetFullPath(aeDst) != Path.GetFullPath(ae)) AtomicFile.Copy(ae, aeDst);
            }
            var sampling = info.SamplingOrDefault;
            sampling = sampling with
            {
                GuidanceScale = p.GetValue(guidance) ?? sampling.GuidanceScale,
                Sampler = p.GetValue(sampler) is { } name ? Samplers.Parse(name) : sampling.Sampler,
                Steps = p.GetValue(steps) ?? sampling.Steps,
            };
            DenoiserCheckpoint.Rewrite(src, dst, i => i with { Autoencoder = aeName1, Sampling = sampling }, storage ?? TorchSharp.torch.ScalarType.Float32);
            Console.WriteLine($"wrote {dst} ({new FileInfo(dst).Length / 1e6:F1} MB; sampling {Samplers.Name(sampling.Sampler)}, {sampling.Steps} steps, guidance {sampling.GuidanceScale:G}){(aeName1 != null ? $" and its autoencoder {Path.Combine(dir, aeName1)}" : "")}");
            return 0;
        });
        return command;
    }
}
