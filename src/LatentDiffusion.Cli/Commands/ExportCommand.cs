using System.CommandLine;
using LatentDiffusion.Cli.Grammar;
using LatentDiffusion.IO;
using LatentDiffusion.Text;
using LatentDiffusion.Transformers;

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
        var command = new Command("export", "Copy a trained model and its autoencoder into a models folder, the model naming the autoencoder beside it.")
        { model, autoencoder, output, aeName, dtype };
        command.SetAction(p =>
        {
            string src = CliParsing.ExistingFile(p.GetValue(model)!, "--model");
            string dst = p.GetValue(output)!;
            if (!dst.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
                throw new LdmException($"--out '{dst}' must be a .safetensors file.");
            var parsed = DtypeNames.Parse(p.GetValue(dtype));
            var storage = parsed == TorchSharp.torch.ScalarType.Float32 ? null : (TorchSharp.torch.ScalarType?)parsed;
            string dir = Path.GetDirectoryName(Path.GetFullPath(dst))!;
            Directory.CreateDirectory(dir);
            var ckpt = ModelCheckpoint.Load(src, TransformerCheckpoint.Kind);
            var (net, info) = TransformerCheckpoint.Load(src);
            using (net)
            {
                foreach (var w in ckpt.Weights.Values) w.Dispose();
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
                var exported = info with { Autoencoder = aeName1 };
                var extra = ckpt.Extra.Where(kv => kv.Key != WordVocabulary.MetadataKey).ToDictionary(kv => kv.Key, kv => kv.Value);
                TransformerCheckpoint.Save(dst, net, exported, storage, extra);
                Console.WriteLine($"wrote {dst} ({new FileInfo(dst).Length / 1e6:F1} MB){(aeName1 != null ? $" and its autoencoder {Path.Combine(dir, aeName1)}" : "")}");
            }
            return 0;
        });
        return command;
    }
}
