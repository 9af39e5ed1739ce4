using System.CommandLine;
using LatentDiffusion.Diffusion;
using static TorchSharp.torch;

namespace LatentDiffusion.Cli.Grammar;

/// <summary>
/// The options that several commands share, built here so each has one name, one meaning and one help text wherever it
/// appears. Every call returns a new option (an option belongs to one command).
/// </summary>
public static class CommonOptions
{
    /// <summary><c>-d/--data</c>: a data-set spec (<see cref="DataSetSpec"/>).</summary>
    public static Option<string> Data(string reads, string? defaultValue = null) =>
        WithDefault(new Option<string>("--data", "-d") { Description = $"{reads}: {DataSetSpec.Syntax}." }, defaultValue);

    /// <summary><c>-m/--model</c>: a denoiser checkpoint.</summary>
    public static Option<string> Model(string description, bool required = true) =>
        NotEmpty(new Option<string>("--model", "-m") { Description = description, Required = required }, "the path of a model file");

    /// <summary><c>-o/--out</c>: where the command writes (a folder or a file, as its help says).</summary>
    public static Option<string> Out(string description, string? defaultValue = null) =>
        NotEmpty(WithDefault(new Option<string>("--out", "-o") { Description = description }, defaultValue), "the path to write to");

    /// <summary>Refuses an empty or blank path (<c>--out ""</c>, an unset shell variable) while parsing, before any work.</summary>
    public static Option<T> NotEmpty<T>(Option<T> option, string what)
    {
        option.Validators.Add(result =>
        {
            if (result.Tokens.Count > 0 && string.IsNullOrWhiteSpace(result.Tokens[^1].Value))
                result.AddError($"{option.Name} is empty; give {what} (an empty shell variable?)");
        });
        return option;
    }

    /// <summary>Required without a default, else defaulted.</summary>
    static Option<string> WithDefault(Option<string> option, string? defaultValue)
    {
        if (defaultValue is null) option.Required = true;
        else option.DefaultValueFactory = _ => defaultValue;
        return option;
    }

    /// <summary><c>-n/--num</c>: how many images in total.</summary>
    public static Option<int?> Num(string defaultText) => new("--num", "-n") { Description = $"Number of images in total (default: {defaultText})." };

    /// <summary><c>--dtype</c> with the dtypes this command supports; read it with <see cref="DtypeNames.Parse"/>.</summary>
    public static Option<string> Dtype(string what, string defaultValue = "float32", params ScalarType[] supported) => new("--dtype")
    {
        Description = $"{what}: {DtypeNames.ListOf(supported.Length > 0 ? supported : [ScalarType.Float32, ScalarType.BFloat16, ScalarType.Float16])}.",
        DefaultValueFactory = _ => defaultValue,
    };

    /// <summary><c>--dtype</c> of a command that runs a model, <c>auto</c> by default (the faster of float32 and bf16 on
    /// this machine); read it with <see cref="DtypeNames.ParseCompute"/>.</summary>
    public static Option<string> ComputeDtype(string what, params ScalarType[] supported) => new("--dtype")
    {
        Description = $"{what}: auto (the faster of float32 and bf16 on this machine, measured once per CPU and cached), {DtypeNames.ListOf(supported)}.",
        DefaultValueFactory = _ => "auto",
    };

    /// <summary><c>--seed</c>: the seed of everything random the command does.</summary>
    public static Option<long> Seed(string what) => new("--seed") { Description = $"Random seed ({what}); the same seed gives the same result.", DefaultValueFactory = _ => 0 };

    /// <summary><c>--sampler</c>; read it with <see cref="SamplerNames.Parse"/>.</summary>
    /// <param name="defaultValue">null: no default (the command decides, e.g. only with --model).</param>
    /// <param name="note">What the option does in this command, when more than choosing the sampler.</param>
    public static Option<string> Sampler(string? defaultValue = "ddim", string? note = null)
    {
        var option = new Option<string>("--sampler") { Description = $"Sampler: {SamplerNames.List} (ddim takes --eta; dpm++2m is good in 10-25 steps){(note is null ? "" : "; " + note)}." };
        if (defaultValue is not null) option.DefaultValueFactory = _ => defaultValue;
        return option;
    }

    /// <summary><c>--threads</c> and <c>--device</c>, for every command that runs a model.</summary>
    public static RuntimeOptions Runtime() => new();

    /// <summary>A spelling kept only because a shipped doc or recipe uses it: hidden from help; read it with
    /// <see cref="ReadDeprecated{T}"/>, which notes the replacement.</summary>
    public static Option<T> Deprecated<T>(string name) => new(name) { Hidden = true };

    /// <summary>The value of a deprecated option when it was given (with a note on stderr), else default.</summary>
    public static bool ReadDeprecated<T>(ParseResult parse, Option<T> option, string replacement, out T value)
    {
        value = default!;
        if (parse.GetResult(option) is not { Implicit: false }) return false;
        value = parse.GetValue(option)!;
        DeprecationNote.Write(value is bool ? option.Name : $"{option.Name} {value}", replacement.Replace("{}", value?.ToString()));
        return true;
    }
}

/// <summary><c>--threads</c> (intra-op threads of libtorch) and <c>--device</c>: where and on how many cores a model runs.</summary>
public sealed class RuntimeOptions
{
    public Option<int?> Threads { get; } = new("--threads") { Description = "Intra-op threads of libtorch (default: all cores; under mpiexec, the cores shared by the ranks on the machine)." };

    public Option<string> Device { get; } = new("--device") { Description = $"Where models run: {DeviceNames.List} (auto: cuda when available, else cpu).", DefaultValueFactory = _ => "auto" };

    public IEnumerable<Option> All => [Threads, Device];

    /// <summary>Sets libtorch's thread count and returns the device; both checked before any work starts.</summary>
    public Device Apply(ParseResult parse)
    {
        var device = DeviceNames.Parse(parse.GetValue(Device));
        if (parse.GetValue(Threads) is int n)
        {
            if (n < 1) throw new LdmException($"--threads must be at least 1, got {n}; leave it out to use all cores.");
            // More threads than cores only slows libtorch down, and --threads 100000 hung while starting them.
            int most = Math.Max(256, 4 * Environment.ProcessorCount);
            if (n > most) throw new LdmException($"--threads must be at most {most} (4 × the {Environment.ProcessorCount} cores here, or 256), got {n}; leave it out to use all cores.");
            TorchSharp.torch.set_num_threads(n);
        }
        return device;
    }
}
