using System.CommandLine;
using LatentDiffusion.Cli.Plots;

namespace LatentDiffusion.Cli.Commands;

/// <summary>`ldm plot`: loss curves of one or more training runs in one PNG (e.g. bf16 against float32, block variants).</summary>
public static class PlotCommand
{
    public static Command Create()
    {
        var runs = new Argument<string[]>("runs") { Description = "Run folders (their metrics.jsonl) or metrics.jsonl files.", Arity = ArgumentArity.OneOrMore };
        var labels = new Option<string?>("--labels") { Description = "Comma-separated legend labels, one per run (default: folder names)." };
        var key = new Option<string>("--key") { Description = "Metric to plot.", DefaultValueFactory = _ => "loss" };
        var title = new Option<string>("--title") { DefaultValueFactory = _ => "training loss" };
        var linear = new Option<bool>("--linear") { Description = "Linear instead of log10 y axis." };
        var output = Grammar.CommonOptions.NotEmpty(new Option<string>("--out", "-o") { Description = "PNG to write.", Required = true }, "the path of the PNG");
        var maxStep = new Option<int?>("--max-step") { Description = "Plot only steps up to this one (compare runs of different lengths)." };
        var command = new Command("plot", "Plot training curves (metrics.jsonl) of one or more runs into a PNG.") { runs, labels, key, title, linear, output, maxStep };
        command.SetAction(p =>
        {
            var paths = p.GetValue(runs)!.Select(r => Directory.Exists(r) ? Path.Combine(r, "metrics.jsonl") : r).ToList();
            var names = p.GetValue(labels)?.Split(',').Select(l => l.Trim()).ToList()
                ?? paths.Select(m => Path.GetFileName(Path.GetDirectoryName(Path.GetFullPath(m))) ?? m).ToList();
            if (names.Count != paths.Count)
                throw new LdmException($"--labels has {names.Count} labels for {paths.Count} runs; give one label per run.");
            string output1 = p.GetValue(output)!;
            if (!output1.EndsWith(".png", StringComparison.OrdinalIgnoreCase))
                throw new LdmException($"--out '{output1}' must be a .png file.");
            string? dir = Path.GetDirectoryName(Path.GetFullPath(output1));
            if (dir != null) Directory.CreateDirectory(dir);
            LossCurvePlot.Save(output1, names.Zip(paths).ToList(), p.GetValue(title)!, p.GetValue(key)!, logScale: !p.GetValue(linear), maxStep: p.GetValue(maxStep));
            Console.WriteLine($"wrote {output1}");
            return 0;
        });
        return command;
    }
}
