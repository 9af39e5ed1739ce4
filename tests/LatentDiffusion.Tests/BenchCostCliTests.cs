using System.Text.RegularExpressions;

namespace LatentDiffusion.Tests;

/// <summary>`ldm bench --only cost`: parameters and forward GFLOPs per image from the configs, a UNet beside its Transformer.</summary>
[Collection(ConsoleCollection.Name)]
public sealed class BenchCostCliTests
{
    /// <summary>The table's text with the frame removed and whitespace collapsed, so values wrapped over lines read as one.</summary>
    static string Flat(string table) => Regex.Replace(Regex.Replace(table, "[│┌┐└┘├┤┬┴┼─]", " "), @"\s+", " ");

    [Fact]
    public void UNetPreset_IsPrintedBesideTheTransformerItIsSizedLike()
    {
        var r = CliTestHost.Run("bench", "--backbone", "unet", "--unet-preset", "UNet-S", "--input-size", "32", "--channels", "4",
            "--num-classes", "1000", "--only", "cost");
        Assert.True(r.ExitCode == 0, r.ToString());
        string text = Flat(r.Stdout);
        var unet = Diffusion.ModelCost.Of(UNets.UNetPresets.Create("UNet-S", 32, 4, 1000));
        var transformer = Diffusion.ModelCost.Of(Transformers.TransformerConfig.FromPreset("S/2", 32, 4, 1000));
        Assert.Contains($"{unet.Parameters:N0} parameters; forward {unet.ForwardGFlops:F2} GFLOPs per image", text);
        Assert.Contains($"{transformer.Parameters:N0} parameters; forward {transformer.ForwardGFlops:F2} GFLOPs per image", text);
        Assert.Contains("beside: transformer", text);
    }

    [Fact]
    public void TransformerPreset_PrintsItsCostAlone()
    {
        var r = CliTestHost.Run("bench", "--preset", "S/2", "--block", "adaln-zero", "--only", "cost");
        Assert.True(r.ExitCode == 0, r.ToString());
        string text = Flat(r.Stdout);
        Assert.Contains("32,963,360 parameters; forward 12.11 GFLOPs per image", text);   // DiT-S/2: 6.06 Gflops at one flop per multiply-add
        Assert.DoesNotContain("beside", text);
    }

    /// <summary>--model benches a checkpoint's own architecture (a study's run, a converted model); preset options beside it are refused.</summary>
    [Fact]
    public void ModelCheckpoint_IsBenchedWithItsOwnArchitecture()
    {
        string dir = RepoPaths.NewTempDir("bench-model");
        try
        {
            string path = TinyModels.SaveCheckpoint(dir);
            var r = CliTestHost.Run("bench", "--model", path, "--only", "cost");
            Assert.True(r.ExitCode == 0, r.ToString());
            var cost = Diffusion.ModelCost.Of(TinyModels.Config());
            Assert.Contains($"{cost.Parameters:N0} parameters; forward", Flat(r.Stdout));
            var timed = CliTestHost.Run("bench", "--model", path, "--only", "train", "--runs", "1", "--warmup-runs", "0", "-b", "2");
            Assert.True(timed.ExitCode == 0, timed.ToString());
            var refused = CliTestHost.Run("bench", "--model", path, "--preset", "B/2");
            Assert.Equal(1, refused.ExitCode);
            Assert.Contains("--preset sizes a preset", refused.Stderr);
        }
        finally { Directory.Delete(dir, true); }
    }
}
