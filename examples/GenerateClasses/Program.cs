// Generates one image of each class of a class-conditional model and writes them as one PNG grid.
// Usage: GenerateClasses [model.safetensors] [grid.png]
// The model's autoencoder is found beside it; sampling uses the settings stored in the model.
using LatentDiffusion.Pipelines;

string model = args.Length > 0 ? args[0] : "models/shapes-class.safetensors";
string output = args.Length > 1 ? args[1] : "shapes-classes.png";

using var pipe = DiffusionPipeline.Load(model);
using var images = pipe.Generate(Enumerable.Range(0, pipe.NumClasses).ToList());
images.SaveGrid(output, columns: 4);

Console.WriteLine($"{images.Count} images ({string.Join(", ", pipe.ClassNames)}) -> {output}");
