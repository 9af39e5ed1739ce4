using System.CommandLine;
using LatentDiffusion.Cli.Grammar;
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
        var model = CommonOptions.Model("The denoiser to export (a run's model.safetensors).");
        var autoencoder = new Option<string?>("--autoencoder", "-a") { Description = "Latent models: its autoencoder (default: the one it names, beside it)." };
        var output = CommonOptions.Out("The exported model file.");
        var aeName = new Option<string?>("--autoencoder-name") { Description = "File name of the autoencoder beside the exported model (default: MODEL-autoencoder.safetensors)." };
        var dtype = CommonOptions.Dtype("Storage dtype of the denoiser (loaded back as float32)");
        var guidance = new Option<double?>("--guidance", "-g") { Description = "Store this guidance scale as the model's recommended one (1 = none)." };
        var sampler = CommonOptions.Sampler(defaultValue: null, note: "stored as the model's recommended one");
        var steps = new Option<int?>("--steps") { Description = "Store this step count as the model's recommended one." };
        var command = new Command("export", "Copy a trained model and its autoencoder into a models folder, the model naming the autoencoder beside it; optionally set its recommended sampling settings.")
        { model, autoencoder, output, aeName, dtype, guidance, sampler, steps };
        command.SetAction(p =>
        {
            string src = CliParsing.ExistingFile(p.GetValue(model)!, "--model");
            string dst = p.GetValue(output)!;
            if (!dst.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
                throw new LdmException($"--out '{dst}' must be a .safetensors file.");
            var parsed = DtypeNames.Parse(p.GetValue(dtype));
            var storage = parsed == TorchSharp.torch.ScalarType.Float32 ? null : (TorchSharp.torch.ScalarType?)parsed;
            string dir = Path.GetDirectoryName(Path.GetFullPath(dst))!;
            WriteFailure.CreateFolder(dir);
            WriteFailure.CheckWritable(dir);
            var info = DenoiserCheckpoint.PeekInfo(src);
            string? aeName1 = null, aeCopied = null;
            if (!info.IsPixelSpace)
            {
                string ae = p.GetValue(autoencoder) is { } a ? CliParsing.ExistingFile(a, "--autoencoder")
                    : info.AutoencoderBeside(src) ?? throw new LdmException($"'{src}' names no autoencoder beside it; pass --autoencoder.");
                aeName1 = p.GetValue(aeName) ?? Path.GetFileNameWithoutExtension(dst) + "-autoencoder.safetensors";
                if (aeName1.Contains('/') || aeName1.Contains('\\')) throw new LdmException("--autoencoder-name is a file name, not a path; the autoencoder goes beside the model.");
                string aeDst = Path.Combine(dir, aeName1);
                if (Path.GetFullPath(aeDst) != Path.GetFullPath(ae))
                {
                    AtomicFile.Copy(ae, aeDst);
                    aeCopied = aeDst;
                }
            }
            var sampling = info.SamplingOrDefault.With(SamplerNames.ParseOptional(p.GetValue(sampler)), p.GetValue(steps), p.GetValue(guidance));
            try { DenoiserCheckpoint.Rewrite(src, dst, i => i with { Autoencoder = aeName1, Sampling = sampling }, storage ?? TorchSharp.torch.ScalarType.Float32); }
            catch (LdmException e) when (aeCopied is not null)
            {
                // An autoencoder without the model that names it is half an export.
                try { File.Delete(aeCopied); }
                catch (Exception d) when (WriteFailure.IsWriteError(d)) { throw new LdmException($"{e.Message.TrimEnd('.')} (the autoencoder copy {aeCopied} was written and could not be removed).", e); }
                throw new LdmException($"{e.Message.TrimEnd('.')} (removed the autoencoder copy {aeCopied} written before it).", e);
            }
            Console.WriteLine($"wrote {dst} ({new FileInfo(dst).Length / 1e6:F1} MB; sampling {SamplerNames.Of(sampling.Sampler)}, {sampling.Steps} steps, guidance {sampling.GuidanceScale:G}){(aeName1 != null ? $" and its autoencoder {Path.Combine(dir, aeName1)}" : "")}");
            return 0;
        });
        return command;
    }
}
