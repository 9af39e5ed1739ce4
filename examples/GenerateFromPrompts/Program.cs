// Draws prompts with a text-conditional model: four images per prompt, guidance 4, a fixed seed, a progress line,
// one PNG per image and a grid with one row per prompt.
// Usage: GenerateFromPrompts [model.safetensors] [output folder]
using LatentDiffusion.Pipelines;

string model = args.Length > 0 ? args[0] : "models/shapes-text.safetensors";
string folder = args.Length > 1 ? args[1] : "prompts-out";
string[] prompts = ["a large red circle at the center", "a small blue square at the top left and a large yellow triangle at the bottom right"];

using var pipe = DiffusionPipeline.Load(model);
Console.WriteLine($"the model knows {pipe.Vocabulary?.Count} words: {string.Join(" ", pipe.Vocabulary?.Take(12) ?? [])} ...");

var options = pipe.DefaultOptions with { GuidanceScale = 4.0, Seed = 7 };
var perPrompt = prompts.SelectMany(p => Enumerable.Repeat(p, 4)).ToList();
using var images = pipe.Generate(perPrompt, options, onProgress: p => Console.Write($"\r{p.Fraction:P0}"));
Console.WriteLine();

var files = images.Save(folder);
string grid = images.SaveGrid(Path.Combine(folder, "grid.png"), columns: 4);
Console.WriteLine($"{files.Count} PNGs and {grid}");
