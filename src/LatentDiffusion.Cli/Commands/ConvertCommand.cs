using System.CommandLine;
using System.Globalization;
using LatentDiffusion.Autoencoders;
using LatentDiffusion.Cli.Grammar;
using TorchSharp;

namespace LatentDiffusion.Cli.Commands;

/// <summary>
/// `ldm convert`: turns official weights into our checkpoint format (one safetensors file with its config).
/// One converter per model kind (<c>--kind</c>); each reads the input, builds the model, loads the weights strictly
/// and saves the checkpoint.
/// </summary>
public static class ConvertCommand
{
    /// <summary>What a converter receives: the parsed command line.</summary>
    public sealed record Request(string Input, string Output, string? Config, double? ScaleFactor, torch.ScalarType? StorageDtype, int? NumHeads = null, bool Ema = false);

    /// <summary>Converters by <c>--kind</c>. Each returns a one-line summary of what it wrote.</summary>
    public static readonly IReadOnlyDictionary<string, Func<Request, string>> Converters = new Dictionary<string, Func<Request, string>>
    {
        ["autoencoder"] = ConvertAutoencoder,
        ["dit"] = ConvertDiT,
        ["unet"] = ConvertUNet,
    };

    public static Command Create()
    {
        var input = new Argument<string>("input")
        {
            Description = "Official weights: diffusers diffusion_pytorch_model.safetensors, a CompVis/SD .ckpt, or a state-dict .safetensors.",
        };
        var output = CommonOptions.Out("Checkpoint file to write (.safetensors).");
        var kind = new Option<string>("--kind")
        {
            Description = $"Which model the weights are: {string.Join(", ", Converters.Keys)}.",
            DefaultValueFactory = _ => "autoencoder",
        };
        var config = new Option<string?>("--config")
        {
            Description = $"Model architecture: a preset ({string.Join(", ", AutoencoderConfig.PresetNames)} for autoencoders) or a JSON config file (for unet: the official UNetModel arguments, unet_config.params of the yaml).",
        };
        var scale = new Option<double?>("--scale-factor")
        {
            Description = "Latent scale factor stored with an autoencoder (default 0.18215 for the sd preset, else 1).",
        };
        var dtype = CommonOptions.Dtype("Storage dtype of the weights");
        var numHeads = new Option<int?>("--num-heads")
        {
            Description = "DiT only: attention heads, when the width and depth are not one of DiT's presets (the weights do not show it).",
        };
        var ema = new Option<bool>("--ema")
        {
            Description = "unet only: take the EMA weights of a CompVis .ckpt (model_ema.*) instead of model.diffusion_model.*.",
        };
        var command = new Command("convert", "Convert official PyTorch / diffusers weights into an ldm checkpoint.")
        {
            input, output, kind, config, scale, dtype, numHeads, ema,
        };
        command.SetAction(parse =>
        {
            string k = parse.GetValue(kind)!.ToLowerInvariant();
            if (!Converters.TryGetValue(k, out var convert))
                throw new LdmException($"unknown --kind '{k}'; use one of {string.Join(", ", Converters.Keys)}.");
            if (parse.GetValue(ema) && k != "unet")
                throw new LdmException($"--ema applies to --kind unet (CompVis checkpoints) only, not {k}.");
            var request = new Request(parse.GetValue(input)!, parse.GetValue(output)!, parse.GetValue(config), parse.GetValue(scale), ParseDtype(parse.GetValue(dtype)!), parse.GetValue(numHeads), parse.GetValue(ema));
            Console.WriteLine(convert(request));
            return 0;
        });
        return command;
    }

    /// <summary>null for float32: the weights are stored as they are read.</summary>
    static torch.ScalarType? ParseDtype(string s) => DtypeNames.Parse(s) is var t && t == torch.ScalarType.Float32 ? null : t;

    static string ConvertAutoencoder(Request r)
    {
        string preset = r.Config ?? "sd";
        var config = AutoencoderConfig.FromPresetOrFile(preset);
        double scale = r.ScaleFactor ?? (preset.Equals("sd", StringComparison.OrdinalIgnoreCase) ? AutoencoderKL.SdLatentScale : 1.0);
        using var model = AutoencoderImport.FromFile(r.Input, config, scale);
        model.Save(r.Output, r.StorageDtype, new Dictionary<string, string> { ["ldm.made_by"] = $"ldm convert {Path.GetFileName(r.Input)}" });
        long parameters = model.parameters().Sum(p => p.NumberOfElements);
        return $"wrote {r.Output}: autoencoder-kl, {parameters:N0} parameters, f={config.DownsampleFactor}, {config.EmbedDim} latent channels, latent scale {scale.ToString("R", CultureInfo.InvariantCulture)}";
    }

    static string ConvertUNet(Request r)
    {
        if (r.Config is null)
            throw new LdmException("--kind unet needs --config: a JSON file with the official UNetModel arguments (unet_config.params of the model's yaml); the weights do not show the architecture.");
        if (r.ScaleFactor != null || r.NumHeads != null)
            throw new LdmException("--scale-factor and --num-heads do not apply to a UNet; its heads come from num_heads / num_head_channels in --config.");
        var c = Denoisers.UNetConversion.Convert(r.Input, Denoisers.UNetConversion.ReadOfficialConfig(r.Config), r.Output, r.StorageDtype, r.Ema);
        string condition = c.NumClasses > 0 ? $"{c.NumClasses} classes" : c.UseSpatialTransformer ? $"cross-attention on a context of width {c.ContextDim} (no text encoder: sample it through UNetModel.Forward with a context)" : "unconditional";
        return $"wrote {r.Output}: LDM UNet, input {c.ImageSize}x{c.ImageSize}x{c.InChannels}, {c.ModelChannels} channels x [{string.Join(",", c.ChannelMult)}], {condition}, learn sigma {c.LearnSigma}";
    }

    static string ConvertDiT(Request r)
    {
        if (r.Config != null || r.ScaleFactor != null)
            throw new LdmException("--config and --scale-factor are for autoencoders; a DiT checkpoint's config is read off its weights (use --num-heads if asked).");
        var c = Denoisers.DiTConversion.Convert(r.Input, r.Output, r.NumHeads, r.StorageDtype);
        return $"wrote {r.Output}: DiT (adaLN-Zero) depth {c.Depth}, width {c.HiddenSize}, heads {c.NumHeads}, patch {c.PatchSize}, input {c.InputSize}x{c.InputSize}x{c.InChannels}, {c.NumClasses} classes, learn sigma {c.LearnSigma}";
    }
}
