using LatentDiffusion.IO;
using LatentDiffusion.Layers;
using LatentDiffusion.Transformers;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests;

public class TransformerTests
{
    static TransformerConfig Tiny(BlockType block, bool longSkips = false, int depth = 2, bool learnSigma = true) => new TransformerConfig
    {
        InputSize = 8, PatchSize = 2, InChannels = 4, HiddenSize = 32, Depth = depth, NumHeads = 4, MlpRatio = 2.0,
        ClassDropoutProb = 0.1, NumClasses = 10, LearnSigma = learnSigma, Block = block, LongSkips = longSkips,
    };

    static (Tensor x, Tensor t, Tensor y) Batch(int n = 3, long seed = 7)
    {
        var g = new Generator((ulong)seed, torch.CPU);
        var x = torch.randn(new long[] { n, 4, 8, 8 }, generator: g);
        var t = torch.tensor(Enumerable.Range(0, n).Select(i => (long)(i * 333 % 1000)).ToArray());
        var y = torch.tensor(Enumerable.Range(0, n).Select(i => (long)(i % 11)).ToArray());   // includes the null id 10 for n > 10
        return (x, t, y);
    }

    static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    /// <summary>Moves every parameter away from its (partly zero) init, so that every branch of the math is visible.</summary>
    static void Perturb(nn.Module model, long seed, double std = 0.2)
    {
        using var _ = torch.no_grad();
        var g = new Generator((ulong)seed, torch.CPU);
        foreach (var p in model.parameters())
            p.add_(torch.randn(p.shape, generator: g) * std);
    }

    public static IEnumerable<object[]> Variants() =>
    [
        [BlockType.InContext, false, 2],
        [BlockType.InContext, true, 2],
        [BlockType.InContext, true, 3],
        [BlockType.AdaLnZero, false, 2],
        [BlockType.CrossAttention, false, 2],
    ];

    [Theory]
    [MemberData(nameof(Variants))]
    public void EveryBlockVariantRunsForwardAndBackwardWithTheRightShape(BlockType block, bool longSkips, int depth)
    {
        using var scope = torch.NewDisposeScope();
        var config = Tiny(block, longSkips, depth);
        using var model = new DiffusionTransformer(config, seed: 1);
        Perturb(model, 2);
        var (x, t, y) = Batch();
        var output = model.forward(x, t, y);
        Assert.Equal(new long[] { 3, 8, 8, 8 }, output.shape);
        Assert.Equal(ScalarType.Float32, output.dtype);

        var loss = (output - 1).square().mean();
        loss.backward();
        // Every trainable parameter is reached by the gradient (the label table only through the labels used).
        foreach (var (name, p) in model.named_parameters().Where(p => p.parameter.requires_grad))
        {
            Assert.True(p.grad is not null, $"{name} has no gradient");
            Assert.True(p.grad!.abs().sum().item<float>() > 0, $"{name} has an all-zero gradient");
        }
        Assert.False(model.named_parameters().Single(p => p.name == "pos_embed").parameter.requires_grad);
        if (longSkips)
            Assert.Equal(2 * (depth / 2) + 1, model.named_children().Single(c => c.name == "blocks").module.children().Count());
    }

    [Theory]
    [InlineData(BlockType.AdaLnZero)]
    [InlineData(BlockType.InContext)]
    [InlineData(BlockType.CrossAttention)]
    public void OutputIsZeroAtInitialisation(BlockType block)
    {
        using var scope = torch.NewDisposeScope();
        using var model = new DiffusionTransformer(Tiny(block), seed: 3);
        var (x, t, y) = Batch();
        var output = model.forward(x, t, y);
        Assert.Equal(0f, output.abs().max().item<float>());
    }

    [Fact]
    public void PresetWithAPatchOverrideFitsALatentGridThePresetPatchDoesNotDivide()
    {
        // Fashion-MNIST latents are 7x7: S/2's patch 2 does not divide them, patch 1 does.
        Assert.Throws<LdmException>(() => TransformerConfig.FromPreset("S/2", 7, 4, 10));
        var c = TransformerConfig.FromPreset("S/2", 7, 4, 10, patchSize: 1);
        Assert.Equal((1, 49), (c.PatchSize, c.NumPatches));
    }

    [Fact]
    public void AdaLnZeroBlocksAreTheIdentityAtInitialisation()
    {
        using var scope = torch.NewDisposeScope();
        using var model = new DiffusionTransformer(Tiny(BlockType.AdaLnZero), seed: 3);
        var taps = new Dictionary<string, Tensor>();
        model.DebugTap = (name, v) => taps[name] = v.detach().clone().DetachFromDisposeScope();
        var (x, t, y) = Batch();
        model.forward(x, t, y);
        // blocks.1 output = patch embedding + pos_embed when every gate is zero.
        var expected = taps["x_embedder"] + model.state_dict()["pos_embed"];
        Assert.True(taps["blocks.1"].allclose(expected, rtol: 0, atol: 0));
    }

    [Fact]
    public void DitS2ParameterCountMatchesTheOfficialModel()
    {
        // Official DiT-S/2 for 256x256 images (32x32x4 latents), 1000 classes, learned sigma:
        // sum(p.numel() for p in model.parameters()) = 32,963,360 (pos_embed included, as it is an nn.Parameter).
        // The same formula gives the dit_forward fixture's 183,200 (checked below).
        using var model = new DiffusionTransformer(TransformerConfig.FromPreset("S/2", 32, 4, 1000, BlockType.AdaLnZero), seed: 0);
        Assert.Equal(32_963_360L, model.parameters().Sum(p => p.numel()));

        using var tiny = new DiffusionTransformer(TransformerConfig.FromOfficialDiT(8, 2, 4, 64, 2, 4, 4.0, 0.1, 10, true));
        Assert.Equal(183_200L, tiny.parameters().Sum(p => p.numel()));
    }

    [Fact]
    public void PresetsHaveDitSizesAndUnknownNamesListTheValidOnes()
    {
        var xl = TransformerConfig.FromPreset("XL/2", 32, 4, 1000, BlockType.AdaLnZero);
        Assert.Equal((28, 1152, 16, 2), (xl.Depth, xl.HiddenSize, xl.NumHeads, xl.PatchSize));
        var b8 = TransformerConfig.FromPreset("DiT-B/8", 32, 4, 1000);
        Assert.Equal((12, 768, 12, 8), (b8.Depth, b8.HiddenSize, b8.NumHeads, b8.PatchSize));
        var l4 = TransformerConfig.FromPreset("l/4", 32, 4, 10);
        Assert.Equal((24, 1024, 16, 4), (l4.Depth, l4.HiddenSize, l4.NumHeads, l4.PatchSize));
        Assert.Equal(8, xl.OutChannels);
        Assert.Equal(12, TransformerPresets.Names.Count);

        var e = Assert.Throws<LdmException>(() => TransformerConfig.FromPreset("M/2", 32, 4, 10));
        Assert.Contains("'M/2'", e.Message);
        Assert.Contains("S/2", e.Message);
        Assert.Contains("XL/8", e.Message);
    }

    [Theory]
    [InlineData("hidden_size", "divisible by num_heads")]
    [InlineData("input_size", "not divisible by patch_size")]
    [InlineData("depth", "must be positive")]
    [InlineData("long_skips", "in_context")]
    [InlineData("dropout", "class_dropout_prob")]
    [InlineData("width4", "multiple of 4")]
    [InlineData("classes", "num_classes 0")]
    public void ImpossibleConfigsAreRejectedWithAFix(string what, string fragment)
    {
        var ok = Tiny(BlockType.InContext);
        var bad = what switch
        {
            "hidden_size" => ok with { HiddenSize = 36, NumHeads = 8 },
            "input_size" => ok with { InputSize = 9 },
            "depth" => ok with { Depth = 0 },
            "long_skips" => ok with { Block = BlockType.AdaLnZero, LongSkips = true },
            "dropout" => ok with { ClassDropoutProb = 1.0 },
            "width4" => ok with { HiddenSize = 30, NumHeads = 3 },
            "classes" => ok with { NumClasses = 0, ClassDropoutProb = 0 },
            _ => throw new ArgumentException(what),
        };
        var e = Assert.Throws<LdmException>(() => bad.Validate());
        Assert.Contains(fragment, e.Message);
        Assert.DoesNotContain("\n", e.Message);
        Assert.Throws<LdmException>(() => new DiffusionTransformer(bad));
        ok.Validate();
    }

    [Fact]
    public void ConfigRoundTripsThroughJsonWithSnakeCaseNames()
    {
        var config = Tiny(BlockType.CrossAttention) with { LearnedPosEmbed = true };
        string json = config.ToJson();
        Assert.Contains("\"hidden_size\":32", json);
        Assert.Contains("\"block\":\"cross_attention\"", json);
        Assert.DoesNotContain("out_channels", json, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(config, TransformerConfig.FromJson(json));
        // Through the checkpoint's serializer options (snake_case, kebab enums) the explicit names win.
        string viaCheckpoint = System.Text.Json.JsonSerializer.Serialize(config, ModelCheckpoint.JsonOptions);
        Assert.Equal(config, TransformerConfig.FromJson(viaCheckpoint));
        Assert.Throws<LdmException>(() => TransformerConfig.FromJson("{\"input_size\": 9}"));
    }

    [Fact]
    public void Bf16ModelTakesAndReturnsFloat32CloseToTheFloat32Model()
    {
        using var scope = torch.NewDisposeScope();
        using var model = new DiffusionTransformer(Tiny(BlockType.AdaLnZero), seed: 4);
        Perturb(model, 5);
        model.eval();
        var (x, t, y) = Batch();
        var reference = model.forward(x, t, y);
        model.to(ScalarType.BFloat16);
        Assert.Equal(ScalarType.BFloat16, model.ParameterDtype);
        Assert.Equal(ScalarType.BFloat16, model.state_dict()["pos_embed"].dtype);
        var output = model.forward(x, t.to(ScalarType.Float32), y);
        Assert.Equal(ScalarType.Float32, output.dtype);
        double scale = reference.abs().max().item<float>();
        double err = (output - reference).abs().max().item<float>();
        Assert.True(scale > 0.1, "the reference output should not be trivially small");
        Assert.True(err < 0.05 * scale, $"bf16 differs by {err} (scale {scale})");
    }

    [Fact]
    public void StateDictLoadNamesMissingUnexpectedAndMisShapedKeys()
    {
        using var scope = torch.NewDisposeScope();
        using var source = new DiffusionTransformer(Tiny(BlockType.AdaLnZero), seed: 1);
        using var target = new DiffusionTransformer(Tiny(BlockType.AdaLnZero), seed: 2);
        var dict = source.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value);
        StateDict.Load(target, dict, "good");   // the full dict loads
        Assert.True(Same(target.state_dict()["blocks.0.attn.qkv.weight"], dict["blocks.0.attn.qkv.weight"]));

        dict.Remove("final_layer.linear.weight");
        dict["blocks.9.attn.qkv.weight"] = torch.zeros(3);
        dict["pos_embed"] = torch.zeros(1, 4, 32);
        var e = Assert.Throws<LdmException>(() => StateDict.Load(target, dict, "broken.safetensors"));
        Assert.Contains("final_layer.linear.weight", e.Message);
        Assert.Contains("blocks.9.attn.qkv.weight", e.Message);
        Assert.Contains("pos_embed", e.Message);
        Assert.Contains("broken.safetensors", e.Message);
    }

    [Fact]
    public void AdaLnZeroKeysAreTheOfficialDitKeys()
    {
        using var model = new DiffusionTransformer(Tiny(BlockType.AdaLnZero));
        var keys = model.state_dict().Keys.ToHashSet();
        string[] official =
        [
            "pos_embed", "x_embedder.proj.weight", "x_embedder.proj.bias", "t_embedder.mlp.0.weight", "t_embedder.mlp.0.bias",
            "t_embedder.mlp.2.weight", "t_embedder.mlp.2.bias", "y_embedder.embedding_table.weight",
            "blocks.0.attn.qkv.weight", "blocks.0.attn.qkv.bias", "blocks.0.attn.proj.weight", "blocks.0.attn.proj.bias",
            "blocks.0.mlp.fc1.weight", "blocks.0.mlp.fc1.bias", "blocks.0.mlp.fc2.weight", "blocks.0.mlp.fc2.bias",
            "blocks.0.adaLN_modulation.1.weight", "blocks.0.adaLN_modulation.1.bias",
            "final_layer.linear.weight", "final_layer.linear.bias",
            "final_layer.adaLN_modulation.1.weight", "final_layer.adaLN_modulation.1.bias",
        ];
        foreach (var k in official) Assert.Contains(k, keys);
        Assert.Equal(6 + 1 + 1 + 2 * 10 + 4, keys.Count);   // embedders 6 + table + pos_embed + 2 blocks × 10 + final 4
    }

    [Fact]
    public void SameSeedGivesTheSameWeightsAndAnotherSeedDifferentOnes()
    {
        using var a = new DiffusionTransformer(Tiny(BlockType.InContext, longSkips: true, depth: 3), seed: 11);
        using var b = new DiffusionTransformer(Tiny(BlockType.InContext, longSkips: true, depth: 3), seed: 11);
        using var c = new DiffusionTransformer(Tiny(BlockType.InContext, longSkips: true, depth: 3), seed: 12);
        var sa = a.state_dict(); var sb = b.state_dict(); var sc = c.state_dict();
        foreach (var k in sa.Keys) Assert.True(Same(sa[k], sb[k]), k);
        Assert.False(Same(sa["blocks.0.attn.qkv.weight"], sc["blocks.0.attn.qkv.weight"]));
        // Re-initialising restores the seed's weights.
        a.InitializeWeights(12);
        foreach (var k in sa.Keys) Assert.True(Same(a.state_dict()[k], sc[k]), k);
    }

    [Fact]
    public void ClassifierFreeGuidanceFollowsTheOfficialSemantics()
    {
        using var scope = torch.NewDisposeScope();
        using var model = new DiffusionTransformer(Tiny(BlockType.AdaLnZero), seed: 1);
        Perturb(model, 9);
        model.eval();
        var (x, _, _) = Batch(4);
        var t = torch.tensor(new long[] { 250, 250, 250, 250 });
        var y = torch.tensor(new long[] { 2, 5, 10, 10 });
        var guided = model.ForwardWithCfg(x, t, y, 4.0, guidedChannels: 4);
        var half = x.narrow(0, 0, 2);
        var raw = model.forward(torch.cat([half, half], 0), t, y);
        var cond = raw.narrow(0, 0, 2).narrow(1, 0, 4);
        var uncond = raw.narrow(0, 2, 2).narrow(1, 0, 4);
        var expected = uncond + 4.0 * (cond - uncond);
        Assert.True(guided.narrow(0, 0, 2).narrow(1, 0, 4).allclose(expected, rtol: 1e-5, atol: 1e-6));
        Assert.True(guided.narrow(0, 2, 2).narrow(1, 0, 4).allclose(expected, rtol: 1e-5, atol: 1e-6));
        Assert.True(Same(guided.narrow(1, 4, 4), raw.narrow(1, 4, 4)));   // variance channels unguided
        Assert.Throws<LdmException>(() => model.ForwardWithCfg(x.narrow(0, 0, 3), t.narrow(0, 0, 3), y.narrow(0, 0, 3), 4.0, 4));
    }

    [Fact]
    public void LabelDropoutUsesTheNullClassDeterministically()
    {
        using var scope = torch.NewDisposeScope();
        using var embedder = new LabelEmbedder(10, 8, 0.5);
        var labels = torch.tensor(Enumerable.Range(0, 64).Select(i => (long)(i % 10)).ToArray());
        var table = embedder.Table.weight!;
        var forced = embedder.forward(labels.narrow(0, 0, 2), train: false, forceDropIds: torch.tensor(new long[] { 1, 0 }));
        Assert.True(Same(forced[0], table[10]));
        Assert.True(Same(forced[1], table[labels[1].item<long>()]));

        var a = embedder.forward(labels, train: true, generator: new Generator(5, torch.CPU));
        var b = embedder.forward(labels, train: true, generator: new Generator(5, torch.CPU));
        Assert.True(Same(a, b));
        long dropped = Enumerable.Range(0, 64).Count(i => Same(a[i], table[10]));
        Assert.InRange(dropped, 10, 54);
        Assert.True(Same(embedder.forward(labels, train: false), table.index_select(0, labels)));

        var e = Assert.Throws<LdmException>(() => embedder.forward(torch.tensor(new long[] { 11 })));
        Assert.Contains("out of range", e.Message);
    }

    [Fact]
    public void PaddedConditionTokensAreIgnoredByTheMask()
    {
        using var scope = torch.NewDisposeScope();
        using var model = new DiffusionTransformer(Tiny(BlockType.CrossAttention), seed: 1);
        Perturb(model, 3);
        model.eval();
        var (x, t, _) = Batch(2);
        var g = new Generator(1, torch.CPU);
        var tokens = torch.randn(new long[] { 2, 5, 32 }, generator: g);
        var mask = torch.tensor(new[] { true, true, true, false, false, true, true, false, false, false }).reshape(2, 5);
        var a = model.ForwardTokens(x, t, tokens, mask);
        var changed = tokens.clone();
        changed.narrow(1, 3, 2).fill_(100);   // only padded positions change
        var b = model.ForwardTokens(x, t, changed, mask);
        Assert.True(a.allclose(b, rtol: 1e-5, atol: 1e-6));
        var c = model.ForwardTokens(x, t, changed, null);
        Assert.False(a.allclose(c, rtol: 1e-3, atol: 1e-3));
    }

    [Fact]
    public void InputsOfTheWrongShapeAreUserErrors()
    {
        using var scope = torch.NewDisposeScope();
        using var model = new DiffusionTransformer(Tiny(BlockType.InContext));
        var (x, t, y) = Batch();
        Assert.Throws<LdmException>(() => model.forward(torch.zeros(3, 4, 16, 16), t, y));
        Assert.Throws<LdmException>(() => model.forward(x, t.narrow(0, 0, 2), y));
        Assert.Throws<LdmException>(() => model.forward(x, t, y.narrow(0, 0, 2)));
    }

    [Fact]
    public void UnpatchifyPlacesEachTokensPatchInRowMajorOrder()
    {
        // 2x2 grid of 2x2 patches, 1 channel: token k holds values k*10 + (row-in-patch*2 + col-in-patch).
        var tokens = torch.tensor(Enumerable.Range(0, 4).SelectMany(k => Enumerable.Range(0, 4).Select(j => (float)(k * 10 + j))).ToArray())
            .reshape(1, 4, 4);
        var image = Patches.Unpatchify(tokens, channels: 1, patch: 2);
        Assert.Equal(new long[] { 1, 1, 4, 4 }, image.shape);
        Assert.Equal(0f, image[0, 0, 0, 0].item<float>());
        Assert.Equal(1f, image[0, 0, 0, 1].item<float>());
        Assert.Equal(10f, image[0, 0, 0, 2].item<float>());   // token 1 is to the right of token 0
        Assert.Equal(2f, image[0, 0, 1, 0].item<float>());
        Assert.Equal(20f, image[0, 0, 2, 0].item<float>());   // token 2 starts the second patch row
        Assert.Equal(33f, image[0, 0, 3, 3].item<float>());
    }
}
