using LatentDiffusion.IO;
using LatentDiffusion.Transformers;

namespace LatentDiffusion.Tests.Fixtures;

/// <summary>
/// A `dit` fixture's official weights as the PyTorch .pt file that `ldm convert --kind dit` reads, with the constructor
/// arguments of its manifest: the conversion tests compare against these, not against the sizes of one fixture set.
/// </summary>
public static class FixtureDiTCheckpoint
{
    /// <summary>Writes <c>DiT-fixture.pt</c> in <paramref name="dir"/>; returns its path and the manifest's DiT config.</summary>
    public static (string Pt, TransformerConfig Config) Write(Fixture fixture, string dir)
    {
        string pt = Path.Combine(dir, "DiT-fixture.pt");
        using (var weights = SafetensorsFile.Open(fixture.WeightsPath))
            PyTorchCheckpoint.Save(pt, weights.ReadAll());
        return (pt, DitFixtureRunner.ConfigFrom(fixture.ModelConfig));
    }

    /// <summary>What `ldm convert --kind dit` must say of a DiT with this config (after "wrote FILE: ").</summary>
    public static string ConvertSummary(TransformerConfig c) =>
        $"DiT (adaLN-Zero) depth {c.Depth}, width {c.HiddenSize}, heads {c.NumHeads}, patch {c.PatchSize}, " +
        $"input {c.InputSize}x{c.InputSize}x{c.InChannels}, {c.NumClasses} classes, learn sigma {c.LearnSigma}";
}
