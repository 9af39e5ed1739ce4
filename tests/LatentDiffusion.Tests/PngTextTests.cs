using LatentDiffusion.IO;
using SkiaSharp;

namespace LatentDiffusion.Tests;

/// <summary>PNG text chunks: what is written is read back, the image still decodes, and non-PNG bytes are refused.</summary>
public class PngTextTests
{
    static byte[] SmallPng() => ImageFile.Encode(new ImagePixels(3, 2, 3, new byte[2 * 3 * 3]), SKEncodedImageFormat.Png);

    [Fact]
    public void EntriesRoundTripAndTheImageStillDecodes()
    {
        var entries = new List<KeyValuePair<string, string>>
        {
            new("ldm.prompt", "a large red circle at the top left"),
            new("ldm.command", "ldm sample --model 'my models/x.safetensors' --seed 3"),
            new("note", "Ünïcode — beyond Latin-1 ✓"),
        };
        byte[] png = PngText.Add(SmallPng(), entries);

        Assert.Equal(entries, PngText.Read(png));
        using var bitmap = SKBitmap.Decode(png);
        Assert.Equal((3, 2), (bitmap.Width, bitmap.Height));
    }

    [Fact]
    public void NotAPngIsAnLdmException()
    {
        Assert.Throws<LdmException>(() => PngText.Add(new byte[40], []));
        Assert.Throws<LdmException>(() => PngText.Read([1, 2, 3]));
        Assert.Throws<LdmException>(() => PngText.Add(SmallPng(), [new("bad\nkey", "v")]));
    }
}
