// Converts an official facebookresearch/DiT checkpoint (DiT-XL-2-256x256.pt and friends) into one safetensors file
// with its config, then samples it: class ids of ImageNet, decoded by the Stable Diffusion autoencoder when one is
// given (converted with `ldm convert --kind autoencoder`), else written as latents.
// The head count is read from DiT's presets by size; a model of another size needs --heads N.
// Usage: ConvertDiT <DiT checkpoint .pt> <output .safetensors> [sd-vae.safetensors] [--heads N]
using LatentDiffusion.Denoisers;
using LatentDiffusion.Pipelines;

int? heads = null;
int at = Array.IndexOf(args, "--heads");
if (at >= 0 && at + 1 < args.Length)
{
    heads = int.Parse(args[at + 1]);
    args = args.Where((_, i) => i != at && i != at + 1).ToArray();
}
if (args.Length < 2)
{
    Console.Error.WriteLine("usage: ConvertDiT <DiT checkpoint .pt> <output .safetensors> [sd-vae.safetensors] [--heads N]");
    return 1;
}
var config = DiTConversion.Convert(args[0], args[1], numHeads: heads);
Console.WriteLine($"converted: DiT with hidden size {config.HiddenSize}, depth {config.Depth}, patch {config.PatchSize}, {config.NumClasses} classes");

string? autoencoder = args.Length > 2 ? args[2] : null;
using var pipe = DiffusionPipeline.Load(args[1], autoencoderPath: autoencoder, decode: autoencoder is not null || IsPixelModel(args[1]));
// DiT's own recommendation is stored in the file (250 DDPM steps, guidance 4); fewer steps for a quick look.
var options = pipe.DefaultOptions with { Steps = 25, Seed = 0 };
int[] classes = new[] { 207, 360, 387, 974 }.Where(c => c < pipe.NumClasses).DefaultIfEmpty(0).ToArray();
using var images = pipe.Generate(classes, options);
if (images.IsLatent)
    Console.WriteLine($"{images.Count} latents of shape [{string.Join(", ", images.Images.shape)}] (give the autoencoder to decode them)");
else
    Console.WriteLine($"{images.Count} images -> {images.SaveGrid(Path.ChangeExtension(args[1], ".png"))}");
return 0;

static bool IsPixelModel(string path) => DenoiserCheckpoint.PeekInfo(path).IsPixelSpace;
