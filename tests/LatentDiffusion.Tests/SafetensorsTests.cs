using LatentDiffusion.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests;

public class SafetensorsTests
{
    [Fact]
    public void RoundTripsEveryDtypeWithMetadata()
    {
        string dir = RepoPaths.NewTempDir("st");
        string path = Path.Combine(dir, "a.safetensors");
        var tensors = new Dictionary<string, Tensor>
        {
            ["f32"] = torch.randn(3, 4),
            ["f16"] = torch.randn(5).to(ScalarType.Float16),
            ["bf16"] = torch.randn(2, 2, 2).to(ScalarType.BFloat16),
            ["i64"] = torch.tensor(new long[] { 1, -2, long.MaxValue }),
            ["f64"] = torch.randn(2, dtype: ScalarType.Float64),
            ["empty"] = torch.zeros(0, 3),
        };
        SafetensorsWriter.Write(path, tensors, new Dictionary<string, string> { ["config"] = "{\"a\":1}" });
        using var f = SafetensorsFile.Open(path);
        Assert.Equal("{\"a\":1}", f.Metadata["config"]);
        foreach (var (k, v) in tensors)
        {
            var r = f.Read(k);
            Assert.Equal(v.dtype, r.dtype);
            Assert.Equal(v.shape, r.shape);
            Assert.True(r.equal(v).all().item<bool>(), k);
        }
        Assert.Empty(Directory.GetFiles(dir, "*.tmp", SearchOption.AllDirectories));
    }
}
