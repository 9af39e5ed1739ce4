using LatentDiffusion.IO;
using SkiaSharp;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests;

public class ImageFileTests
{
    static ImagePixels RandomPixels(int w, int h, int c, int seed)
    {
        var rng = new Random(seed);
        var data = new byte[w * h * c];
        rng.NextBytes(data);
        return new ImagePixels(w, h, c, data);
    }

    /// <summary>A PNG with an alpha channel, written by Skia directly (our writer only writes opaque images).</summary>
    static void WriteRgbaPng(string path, int w, int h, byte[] rgba)
    {
        var info = new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var bitmap = new SKBitmap(info);
        System.Runtime.InteropServices.Marshal.Copy(rgba, 0, bitmap.GetPixels(), rgba.Length);
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        File.WriteAllBytes(path, data.ToArray());
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void PngRoundTripIsExact(int channels)
    {
        string dir = RepoPaths.NewTempDir("img");
        var px = RandomPixels(13, 7, channels, 1);
        string path = Path.Combine(dir, "a.png");
        ImageFile.Write(path, px);
        var back = ImageFile.ReadPixels(path, channels);
        Assert.Equal((13, 7, channels), (back.Width, back.Height, back.Channels));
        Assert.Equal(px.Data, back.Data);
        Assert.Empty(Directory.GetFiles(dir, "*.tmp", SearchOption.AllDirectories));
    }

    [Fact]
    public void TensorRoundTripQuantisesLikeSaveImage()
    {
        string path = Path.Combine(RepoPaths.NewTempDir("img"), "t.png");
        // -1 -> 0, 0 -> 128 (x·127.5 + 128), 1 -> 255 (clamped), beyond the range clamps.
        using var t = torch.tensor(new float[] { -1f, 0f, 1f, 2f, -3f, 0.5f }, new long[] { 1, 2, 3 });
        ImageFile.Write(path, t);
        var px = ImageFile.ReadPixels(path, 1);
        Assert.Equal(new byte[] { 0, 128, 255, 255, 0, 191 }, px.Data);
        using var read = ImageFile.Read(path, 1);
        Assert.Equal(new long[] { 1, 2, 3 }, read.shape);
        Assert.Equal(ScalarType.Float32, read.dtype);
        Assert.Equal(-1f, read[0, 0, 0].item<float>());
        Assert.Equal(1f, read[0, 0, 2].item<float>());
    }

    [Fact]
    public void RgbTensorRoundTripWithinHalfLevel()
    {
        string path = Path.Combine(RepoPaths.NewTempDir("img"), "rgb.png");
        using var t = torch.rand(new long[] { 3, 9, 11 }, generator: new Generator(3)).mul_(2).sub_(1);
        ImageFile.Write(path, t);
        using var back = ImageFile.Read(path, 3);
        Assert.Equal(t.shape, back.shape);
        Assert.True((back - t).abs().max().item<float>() <= 0.5f / 127.5f + 1e-6f);
    }

    [Fact]
    public void JpegRoundTripIsClose()
    {
        string path = Path.Combine(RepoPaths.NewTempDir("img"), "a.jpg");
        // A smooth gradient survives JPEG almost unchanged.
        var data = new byte[32 * 32 * 3];
        for (int y = 0; y < 32; y++)
            for (int x = 0; x < 32; x++)
            {
                int i = (y * 32 + x) * 3;
                data[i] = (byte)(x * 8); data[i + 1] = (byte)(y * 8); data[i + 2] = 100;
            }
        ImageFile.Write(path, new ImagePixels(32, 32, 3, data));
        var bytes = File.ReadAllBytes(path);
        Assert.Equal(0xFF, bytes[0]); Assert.Equal(0xD8, bytes[1]);   // JPEG SOI marker
        var back = ImageFile.ReadPixels(path, 3);
        double mae = data.Zip(back.Data, (a, b) => Math.Abs(a - b)).Average();
        Assert.True(mae < 3.0, $"mean abs error {mae}");
        var gray = ImageFile.ReadPixels(path, 1);
        Assert.Equal(1, gray.Channels);
    }

    [Fact]
    public void RgbaIsCompositedOnWhiteAndGrayUsesLuma()
    {
        string path = Path.Combine(RepoPaths.NewTempDir("img"), "rgba.png");
        byte[] rgba =
        {
            255, 0, 0, 255,      // opaque red
            0, 0, 0, 0,          // fully transparent -> white
            0, 0, 255, 128,      // half-transparent blue
            0, 255, 0, 255,      // opaque green
        };
        WriteRgbaPng(path, 2, 2, rgba);
        var rgb = ImageFile.ReadPixels(path, 3);
        Assert.Equal(new byte[] { 255, 0, 0 }, rgb.Data[0..3]);
        Assert.Equal(new byte[] { 255, 255, 255 }, rgb.Data[3..6]);
        byte half = (byte)((255 * 127 + 127) / 255);   // 0·128 + 255·127, /255 rounded
        Assert.Equal(new byte[] { half, half, 255 }, rgb.Data[6..9]);
        var gray = ImageFile.ReadPixels(path, 1);
        // PIL 'L': (19595 R + 38470 G + 7471 B + 32768) >> 16
        Assert.Equal(76, gray.Data[0]);
        Assert.Equal(255, gray.Data[1]);
        Assert.Equal(150, gray.Data[3]);
    }

    [Fact]
    public void ZeroByteFileIsAnError()
    {
        string path = Path.Combine(RepoPaths.NewTempDir("img"), "empty.png");
        File.WriteAllBytes(path, Array.Empty<byte>());
        var e = Assert.Throws<LdmException>(() => ImageFile.ReadPixels(path, 3));
        Assert.Contains(path, e.Message);
        Assert.Contains("empty", e.Message);
    }

    [Fact]
    public void NonImageIsAnError()
    {
        string path = Path.Combine(RepoPaths.NewTempDir("img"), "notes.png");
        File.WriteAllText(path, "this is not an image at all, just some text that happens to end in .png");
        var e = Assert.Throws<LdmException>(() => ImageFile.ReadPixels(path, 3));
        Assert.Contains(path, e.Message);
        Assert.Contains("not an image", e.Message);
    }

    [Fact]
    public void TruncatedPngIsAnError()
    {
        string dir = RepoPaths.NewTempDir("img");
        string full = Path.Combine(dir, "full.png");
        ImageFile.Write(full, RandomPixels(64, 64, 3, 2));   // random pixels do not compress: a long IDAT
        var bytes = File.ReadAllBytes(full);
        string cut = Path.Combine(dir, "cut.png");
        File.WriteAllBytes(cut, bytes[..(bytes.Length / 2)]);
        var e = Assert.Throws<LdmException>(() => ImageFile.ReadPixels(cut, 3));
        Assert.Contains(cut, e.Message);
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void MissingFileIsAnError()
    {
        string path = Path.Combine(RepoPaths.NewTempDir("img"), "nope.png");
        var e = Assert.Throws<LdmException>(() => ImageFile.ReadPixels(path, 3));
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void TooSmallForTheCropIsAnErrorOnlyWhenAMinimumIsAsked()
    {
        string path = Path.Combine(RepoPaths.NewTempDir("img"), "small.png");
        ImageFile.Write(path, RandomPixels(20, 12, 3, 4));
        var e = Assert.Throws<LdmException>(() => ImageFile.LoadPixels(path, 3, size: 16, minSize: 16));
        Assert.Contains(path, e.Message);
        Assert.Contains("20x12", e.Message);
        var up = ImageFile.LoadPixels(path, 3, size: 16);   // without a minimum it is upscaled
        Assert.Equal((16, 16), (up.Width, up.Height));
    }

    [Theory]
    [InlineData(ResizeFilter.Nearest)]
    [InlineData(ResizeFilter.Bilinear)]
    [InlineData(ResizeFilter.Bicubic)]
    [InlineData(ResizeFilter.Lanczos)]
    [InlineData(ResizeFilter.Box)]
    public void CropAndResizeGiveTheAskedSize(ResizeFilter filter)
    {
        string path = Path.Combine(RepoPaths.NewTempDir("img"), "wide.png");
        ImageFile.Write(path, RandomPixels(40, 30, 3, 5));
        using var t = ImageFile.Read(path, 3, size: 16, filter: filter);
        Assert.Equal(new long[] { 3, 16, 16 }, t.shape);
        Assert.True(t.min().item<float>() >= -1f && t.max().item<float>() <= 1f);
        using var g = ImageFile.Read(path, 1, size: 48, filter: filter);
        Assert.Equal(new long[] { 1, 48, 48 }, g.shape);
    }

    [Fact]
    public void CenterCropTakesTheMiddle()
    {
        // Column index as the pixel value: a 10-wide, 4-high image cropped to 4x4 keeps columns 3..6.
        var data = new byte[10 * 4];
        for (int y = 0; y < 4; y++) for (int x = 0; x < 10; x++) data[y * 10 + x] = (byte)x;
        var crop = ImageResize.CenterCropSquare(new ImagePixels(10, 4, 1, data));
        Assert.Equal((4, 4), (crop.Width, crop.Height));
        Assert.Equal(new byte[] { 3, 4, 5, 6 }, crop.Data[0..4]);
    }

    [Fact]
    public void DownscalingAntialiases()
    {
        // A one-pixel checkerboard: point sampling gives pure black or white, an antialiased resize gives mid gray.
        var data = new byte[64 * 64];
        for (int y = 0; y < 64; y++) for (int x = 0; x < 64; x++) data[y * 64 + x] = (byte)(((x + y) & 1) * 255);
        var src = new ImagePixels(64, 64, 1, data);
        foreach (var f in new[] { ResizeFilter.Box, ResizeFilter.Bilinear, ResizeFilter.Bicubic, ResizeFilter.Lanczos })
        {
            var small = ImageResize.Resize(src, 8, 8, f);
            Assert.All(small.Data, v => Assert.InRange(v, 120, 135));
        }
        var nearest = ImageResize.Resize(src, 8, 8, ResizeFilter.Nearest);
        Assert.All(nearest.Data, v => Assert.True(v is 0 or 255));
    }

    [Fact]
    public void ResizeKeepsAConstantImageConstant()
    {
        var data = Enumerable.Repeat((byte)77, 7 * 5 * 3).ToArray();
        var src = new ImagePixels(7, 5, 3, data);
        foreach (var f in Enum.GetValues<ResizeFilter>())
        {
            Assert.All(ImageResize.Resize(src, 19, 23, f).Data, v => Assert.Equal(77, v));
            Assert.All(ImageResize.Resize(src, 3, 2, f).Data, v => Assert.Equal(77, v));
        }
    }

    [Fact]
    public void BoxDownscaleIsTheBlockMean()
    {
        var data = new byte[] { 0, 100, 10, 30, 50, 60, 200, 250 };  // 4x2 gray
        var r = ImageResize.Resize(new ImagePixels(4, 2, 1, data), 2, 1, ResizeFilter.Box);
        Assert.Equal(new byte[] { (0 + 100 + 50 + 60 + 2) / 4, (10 + 30 + 200 + 250 + 2) / 4 }, r.Data);
    }

    /// <summary>
    /// Expected bytes made by Pillow 9.4 (Debian python3-pil): Image.fromarray(a, "RGB").resize((W, H), filter).tobytes()
    /// for the 13×9 image a[y, x, c] = ((37x + 91y + 53c) mod 256) xor (7xy and 255).
    /// </summary>
    [Theory]
    [InlineData(ResizeFilter.Nearest, 5, 4, "87b2eddfea2113448997e22dbf6a11237eb5bf8ad5915a27e32e754f3af5cf02755f02c97708dd2f7245df124993e63d7fb2c57db6e373468d0f5265")]
    [InlineData(ResizeFilter.Nearest, 17, 11, "00356a255a8f255a8f4a7fb46fa4d994c9fe94c9feb9ee23de134803386d285d92285d924d82b772a7dc97cc0197cc01bcf1265b90c587b2ed87b2edabd401dfea21f33845f33845376a5d1344896fa2f9bb80d5bb80d597e22d8b4471bf6a11bf6a114318d5b6eb20d51e4bd51e4b1c29760f70a572478c72478c29e29fc09daadb8c41ae6338ae63387d4613a4d11ed7182dd7182dda0f74b6eb20d51e4bd51e4b1c29760f70a572478c72478c29e29fc09daadb8c41ae6338ae63387d4613a4d11ed7182dd7182dda0f7411467b237eb5237eb571baefbf8ad5f18e5bf18e5ba3965d915a2787daed91c60b91c60be32e75516a3f4f3af54f3af531fecb6ca1d68ddae78ddae78ed3188f441170451a70451aa9d603e2d71cab601d74291e74291e4512dfc60b50370c59370c59780dc2c7fc31cf0275cf027557003d5f02c9d71c49d71c492f1a457708dd3f0ac1f73c41f73c412f72456730fddf1249df1249271c4922578c6d569b6d569b38f582efb8851e43881e438809c297fcc996037ca91a2fe41a2fe415dea3306d5a7720ed7720ed26ebb022578c6d569b6d569b38f582efb8851e43881e438809c297fcc996037ca91a2fe41a2fe415dea3306d5a7720ed7720ed26ebb07db2e793e63d93e63da59e537fb2c5d582bfd582bfc39e557db6e3d7e2bd2d52872d528773468d05ceb30f52650f52657522efd80d42c50a5fc50a5f5227fcefd4198c41368c413689dee3e6bb705398cdc0f5aac0f5aadda2777a4f8407ccb107ccb134695e")]
    [InlineData(ResizeFilter.Bilinear, 5, 4, "6683888b987b77707f7b847f9b7b536a87918a7f769a92609668577c5081857e7d7f5a6980657f615285663c8c90797e9b948597aea6688e9c3b779d")]
    [InlineData(ResizeFilter.Bilinear, 17, 11, "00356a184d8234699e5186bb6da2d789bef3a5da97c2ba2cde1348372f64174c8133689d4f84b96ba0d588bd5ba4d90ebcf1264277ac5d8ec67ba89199c238bed651d2826c9e76635779574a37775073bd747dca8e8fa283c256847184a175429873426453a58dc26ba483868f6a726080486da5669a5e6b7273763f9f8771759b9d8e96af8289a77863898d2196903db75f2fb92e4d9513a07aaf418b6761704d863f63a54e78b588688c7d91806bb784af857ab9a07eaf9651a3712ca044368b982c995c57a23c809d669422578c2f7bad50a3c282b3c4b281b3cf806cc0904ea39643a0712592b0a18cb6659d8332c02c8477504f56429b466ad33ed2c96ca1d681c6e18dd7928eba178f4c117945178b890fb6d609e2d71cb87c1d8e431e6622574d12d7af0c69720c554e0c7e780dc2b6eb4fbe6e759b286762224b680fa1a91d5f892f3d5539588a2eba601fa99d2a6cac4446375d696c33c8a31b888f145336195f5e936b7f578171607e589573b4789b7b487e3e5b75418586cc83b0435eb24442ad545a9d21b1823d68927934a5734aa326a08b4b80b56c8f8975ad6f78c976b7b79f8779a168868e75b588c2c0b97ab0b44171b62c59b03e9998229986365f9c4856b94a90cd9685ba9d9d6f99975f9189859db895b78699bb8e8baeb28c9ab7c4adc9c281a4a767758e8a6489379ea1178a8c2b5d956335c7d80d42cc0b559616a06e46d4e6ca26a96c2d8b8b879fd6c8e6bb7076a0b78dc9bac9dd9bd79d788b5e8236999e17a99434695e")]
    [InlineData(ResizeFilter.Bicubic, 5, 4, "618088919d7d716c827887859e7f4f6b8992897972a09d5ca0654a7c48838286808055637b637b5a4c8964399090737e9e978699b4ae6a939d35799d")]
    [InlineData(ResizeFilter.Bicubic, 17, 11, "002f6412477c30659e4d83c2699fde84c2ffa5ef9ccecb17e6114528265f02497c2e669d4c80c06aa3ea86c158a7e100c3fc213d70b85792e17eb899a7d225d0e443eb7b65a6695d48744e3932774378d17780e79993ac86d350806190a7713797783b524cb99cd966be858a9e5a6c56793464aa5ba14a6269667523a9936b7da8aa9495c37e8fb0716585930e989a36c85e1bc718439900aa80be2c9a5c49712f822752b83972c88760947798875fc890ba8881c8a47eb59f44a36c1ba2362d87b41e9c5f55af2d85aa698b11438c1975b045b1d189c3d8c186bfe48469cf9549a5933f9a6a1b8bbdc283d26da08f1ed2258c6f50414838a83972ef31edcf6a9ed582c7f090e2988fc00b90491174361985880eb9e306e2d71cba7a1d8d3d11601f534811dfbd0c64710b47430c7e7b0dc7c6fd40d36a72a41661580b3e5900b0bf156093272a4428517e1ac7500cbab22065cb462e2f5d5c682fe7bc168a9f0c392b0a54538c5e81418269578546a475c37c9e793b7c1f5374298b8dd582b02757b63230ba595aa815c97e34688b8c1eb27f4aae16bd81377cc761958f71c46576e670c0c3a48175b15a859071c480c7cdba7fc3b12c68bc1145bd37a09f15ab7a2e569b494ec84da1dd9a8dcba0af699fa14b96808291b99dc286a5cf8987b6b0818eb6ccc1d7ca86aba35e688392558831acac04988227548b6f22d4dd073ad701488e04af5e3dedf0d31aa95e147c828f9ce6dbeabb6b6594bb83cfc5d8f09bdfa075934c7d2e9fa80db898336754")]
    [InlineData(ResizeFilter.Lanczos, 5, 4, "5f7d8591a17f6f6989768a85a1854b70899388746da4a05aa963447c3f827d8b858158627c617655468f5f3c9490717d9d998798b5b668989f357c9b")]
    [InlineData(ResizeFilter.Lanczos, 17, 11, "0030611143743264a1487dc5649ce081bbff9eff9ddacb0eec12452d1b5e004e773363984b7dc36ba7f182c05aaae300c8ff213364b8498eec7ac09eacdb2bd6e844f17d6caf6c5d4b723f392b703875d3717ff29999a586d35a795f9ba86d3790873e4a58bdabee66d69392ad4c6250801c5cac46a33a5760536e0ab19e6388b3b5988ed97891b26b65809b029b9b2dda5f06cd013e9900b67cc01d9b55346b1485154bd22b6de28c60a376a38c5dcb97c28184cd9d82aeb03ea36410a6322a81c21e986a5ab62e8aae7e7d093a980d73b942ccdc93d0d5cc8db7eb8161d39e48aa9132996d118cbbca77e272a28a1bd52696754a413b2ca0337afd2cf1d46a9dd080c1f792ee978fbe05914b0e742b1d80890ebeeb05e2d71cbd7b248f380359215a4b12e0c00b6e750b333c0d867f0dc9ccff41dd7979ac19565307354d00abc7116a9a28144327517b1aca5009c0c01a5bd1461f295562602ef2cf168b9b05252d0059538a498a2c7a5e448d3fa480c77fa38d317b144972288a9ad776b21b50be3021c76f6ba812d874297086a205c58359af05d071237cde539f9f6ce4577eff69c3d0a68176c45f888e7dd478caddb892dbac205eb80032cb2fa2a60fbf70284b904948d954aeefa48dc9a8b168a5953f9473898db49cc586a6db827fb3ad818ab0ccc6d4d28cb6a06964779a51853ba4b503a97c2c4d847217d2da0438e1003a7f00c45f45f0f3d61cb35c006476a0a5f3deeebc69638ab274cfd1e7fd99de9f759a437528a0b20cbe9834674d")]
    [InlineData(ResizeFilter.Box, 5, 4, "558690b6a490646c747291938e87646d8e8988646da3a75b8f4f4c834e7673706d914788525e9f566f845f4e979c6984b49375a4bcae908c8e35769a")]
    [InlineData(ResizeFilter.Box, 17, 11, "00356a255a8f255a8f4a7fb46fa4d994c9fe94c9feb9ee23de134803386d285d92285d924d82b772a7dc97cc0197cc01bcf1265b90c587b2ed87b2edabd401dfea21f33845f33845376a5d1344896fa2f9bb80d5bb80d597e22d8b4471bf6a11bf6a114318d5b6eb20d51e4bd51e4b1c29760f70a572478c72478c29e29fc09daadb8c41ae6338ae63387d4613a4d11ed7182dd7182dda0f74b6eb20d51e4bd51e4b1c29760f70a572478c72478c29e29fc09daadb8c41ae6338ae63387d4613a4d11ed7182dd7182dda0f7411467b237eb5237eb571baefbf8ad5f18e5bf18e5ba3965d915a2787daed91c60b91c60be32e75516a3f4f3af54f3af531fecb6ca1d68ddae78ddae78ed3188f441170451a70451aa9d603e2d71cab601d74291e74291e4512dfc60b50370c59370c59780dc2c7fc31cf0275cf027557003d5f02c9d71c49d71c492f1a457708dd3f0ac1f73c41f73c412f72456730fddf1249df1249271c4922578c6d569b6d569b38f582efb8851e43881e438809c297fcc996037ca91a2fe41a2fe415dea3306d5a7720ed7720ed26ebb022578c6d569b6d569b38f582efb8851e43881e438809c297fcc996037ca91a2fe41a2fe415dea3306d5a7720ed7720ed26ebb07db2e793e63d93e63da59e537fb2c5d582bfd582bfc39e557db6e3d7e2bd2d52872d528773468d05ceb30f52650f52657522efd80d42c50a5fc50a5f5227fcefd4198c41368c413689dee3e6bb705398cdc0f5aac0f5aadda2777a4f8407ccb107ccb134695e")]
    public void ResizeMatchesPillowByteForByte(ResizeFilter filter, int width, int height, string expectedHex)
    {
        var data = new byte[13 * 9 * 3];
        for (int y = 0; y < 9; y++)
            for (int x = 0; x < 13; x++)
                for (int c = 0; c < 3; c++)
                    data[(y * 13 + x) * 3 + c] = (byte)(((x * 37 + y * 91 + c * 53) % 256) ^ ((x * y * 7) & 0xFF));
        var resized = ImageResize.Resize(new ImagePixels(13, 9, 3, data), width, height, filter);
        Assert.Equal(expectedHex, Convert.ToHexString(resized.Data).ToLowerInvariant());
    }

    [Fact]
    public void GridHasMakeGridLayout()
    {
        using var images = torch.ones(new long[] { 5, 3, 8, 6 });   // white cells
        using var grid = ImageGrid.Make(images, columns: 3, padding: 2);
        Assert.Equal(new long[] { 3, 2 * (8 + 2) + 2, 3 * (6 + 2) + 2 }, grid.shape);
        Assert.Equal(-1f, grid[0, 0, 0].item<float>());          // padding
        Assert.Equal(1f, grid[0, 2, 2].item<float>());           // first cell
        Assert.Equal(1f, grid[0, 12, 12].item<float>());         // fifth cell
        Assert.Equal(-1f, grid[0, 12, 18].item<float>());        // sixth cell is empty

        string path = Path.Combine(RepoPaths.NewTempDir("grid"), "grid.png");
        ImageGrid.Save(path, images, columns: 3, padding: 2);
        var px = ImageFile.ReadPixels(path, 3);
        Assert.Equal((26, 22), (px.Width, px.Height));
        using var one = ImageGrid.Make(images[TensorIndex.Slice(0, 1)], columns: 8, padding: 0);
        Assert.Equal(new long[] { 3, 8, 6 }, one.shape);
    }
}
