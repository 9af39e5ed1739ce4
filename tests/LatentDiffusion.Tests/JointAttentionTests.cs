using LatentDiffusion.Cli.Commands;
using LatentDiffusion.Data;
using LatentDiffusion.Denoisers;
using LatentDiffusion.Text;
using LatentDiffusion.Training;
using LatentDiffusion.Transformers;
using TorchSharp;
using Xunit.Abstractions;
using static LatentDiffusion.Tests.DeviceTesting;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests;

/// <summary>The MM-DiT joint-attention block (<see cref="BlockType.JointAttention"/>) in class and text models.</summary>
public class JointAttentionTransformerTests(ITestOutputHelper output)
{
    internal static TransformerConfig Tiny(bool text, int depth = 2) => new TransformerConfig
    {
        InputSize = 8, PatchSize = 2, InChannels = 4, HiddenSize = 32, Depth = depth, NumHeads = 4, MlpRatio = 2.0,
        ClassDropoutProb = 0.1, NumClasses = 10, LearnSigma = true, Block = BlockType.JointAttention,
        Text = text ? new TextConditionConfig { Tokenizer = "word", VocabSize = 50, MaxTokens = 6, DropoutProb = 0.1 } : null,
    }.Validate();

    internal static (Tensor x, Tensor t) Batch(int n = 3, long seed = 7)
    {
        var g = new Generator((ulong)seed, torch.CPU);
        var x = torch.randn(new long[] { n, 4, 8, 8 }, generator: g);
        var t = torch.tensor(Enumerable.Range(0, n).Select(i => (long)(i * 333 % 1000)).ToArray());
        return (x, t);
    }

    static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    static Tensor Ids(int n, int l) => torch.tensor(Enumerable.Range(0, n * l).Select(i => (long)(i * 7 % 50)).ToArray()).reshape(n, l);

    /// <summary>Moves every parameter away from its (partly zero) init, so that every branch of the math is visible.</summary>
    internal static void Perturb(nn.Module model, long seed, double std = 0.2)
    {
        using var _ = torch.no_grad();
        var g = new Generator((ulong)seed, torch.CPU);
        foreach (var p in model.parameters())
            p.add_(torch.randn(p.shape, generator: g) * std);
    }

    [Fact]
    public void ClassAndTextModelsRunForwardAndBackwardWithTheRightShape()
    {
        using var scope = torch.NewDisposeScope();
        foreach (bool text in new[] { false, true })
        {
            using var model = new DiffusionTransformer(Tiny(text), seed: 1);
            Perturb(model, 2);
            var (x, t) = Batch();
            var y = text ? model.ForwardText(x, t, Ids(3, 5), null) : model.forward(x, t, torch.tensor(new long[] { 0, 4, 10 }));
            Assert.Equal(new long[] { 3, 8, 8, 8 }, y.shape);
            Assert.Equal(ScalarType.Float32, y.dtype);
            y.square().mean().backward();
            // Every parameter that can receive a gradient does (the frozen sin-cos table cannot; the empty-caption
            // null token is unused without an empty caption).
            foreach (var (name, p) in model.named_parameters())
                if (p.requires_grad && name != "text_embedder.null_embedding") Assert.True(p.grad is not null && p.grad.abs().sum().item<float>() > 0, $"{name} has no gradient (text: {text})");
        }
    }

    [Fact]
    public void PaddedTextTokensDoNotChangeTheOutput()
    {
        using var scope = torch.NewDisposeScope();
        using var model = new DiffusionTransformer(Tiny(text: true), seed: 1);
        Perturb(model, 3);
        model.eval();
        var (x, t) = Batch(2);
        var ids = Ids(2, 5);
        var mask = torch.tensor(new[] { true, true, true, false, false, true, true, false, false, false }).reshape(2, 5);
        var a = model.ForwardText(x, t, ids, mask);
        var changed = ids.clone();
        changed.narrow(1, 3, 2).fill_(49);   // only padded positions change
        var b = model.ForwardText(x, t, changed, mask);
        Assert.True(a.allclose(b, rtol: 1e-5, atol: 1e-6));
        // Shorter sequences (the same real tokens without the padding) give the same output as well.
        var c = model.ForwardText(x.narrow(0, 1, 1), t.narrow(0, 1, 1), ids.narrow(0, 1, 1).narrow(1, 0, 2), null);
        Assert.True(a.narrow(0, 1, 1).allclose(c, rtol: 1e-4, atol: 1e-5));
        // Without the mask the changed ids are seen: the test can fail.
        var d = model.ForwardText(x, t, changed, null);
        Assert.False(a.allclose(d, rtol: 1e-3, atol: 1e-3));
    }

    [Fact]
    public void ZeroGatesMakeEveryBlockTheIdentityAtInitialisation()
    {
        using var scope = torch.NewDisposeScope();
        using var model = new DiffusionTransformer(Tiny(text: true, depth: 3), seed: 4);
        var (x, t) = Batch();
        var taps = new Dictionary<string, Tensor>();
        model.DebugTap = (name, value) => taps[name] = value.clone().DetachFromDisposeScope();
        using (torch.no_grad())
        {
            var y = model.ForwardText(x, t, Ids(3, 4), null);
            Assert.Equal(0, y.abs().max().item<float>());
            var start = taps["x_embedder"] + model.get_parameter("pos_embed")!;
            for (int i = 0; i < 3; i++) Assert.True(Same(taps[$"blocks.{i}"], start), $"block {i} is not the identity");
            // A non-zero gate makes the first block act (so the check above can fail).
            var gate = model.get_parameter("blocks.0.x.adaLN_modulation.1.bias")!;
            gate.narrow(0, 2 * 32, 32).fill_(0.5f);
            model.ForwardText(x, t, Ids(3, 4), null);
            Assert.False(taps["blocks.0"].allclose(start, rtol: 1e-3, atol: 1e-3));
        }
        foreach (var d in taps.Values) d.Dispose();
    }

    [Fact]
    public void EachStreamHasItsOwnWeightsAndTheLastContextStreamIsPreOnly()
    {
        using var model = new DiffusionTransformer(Tiny(text: true, depth: 2), seed: 1);
        var names = model.named_parameters().Select(p => p.name).ToHashSet();
        foreach (var stream in new[] { "x", "context" })
            foreach (var key in new[] { "adaLN_modulation.1.weight", "qkv.weight", "qkv.bias", "q_norm.weight", "k_norm.weight", "proj.weight", "mlp.fc1.weight", "mlp.fc2.weight" })
                Assert.Contains($"blocks.0.{stream}.{key}", names);
        Assert.Contains("blocks.1.x.mlp.fc2.weight", names);
        Assert.Contains("blocks.1.context.kv.weight", names);
        Assert.DoesNotContain("blocks.1.context.qkv.weight", names);
        Assert.DoesNotContain("blocks.1.context.q_norm.weight", names);
        Assert.DoesNotContain("blocks.1.context.proj.weight", names);
        Assert.DoesNotContain("blocks.1.context.mlp.fc1.weight", names);
        Assert.Equal(2 * 32, model.get_parameter("blocks.1.context.adaLN_modulation.1.weight")!.shape[0]);   // shift, scale only
        Assert.Contains("final_layer.adaLN_modulation.1.weight", names);
        Assert.Contains("text_embedder.token_embedding.weight", names);
        Assert.DoesNotContain(names, n => n.StartsWith("extra_pos_embed") || n.StartsWith("y_embedder"));
        // The streams start from different draws: separate weights, not shared ones.
        Assert.False(Same(model.get_parameter("blocks.0.x.qkv.weight")!, model.get_parameter("blocks.0.context.qkv.weight")!));
    }

    [Fact]
    public void SameSeedGivesTheSameWeights()
    {
        using var a = new DiffusionTransformer(Tiny(text: false), seed: 5);
        using var b = new DiffusionTransformer(Tiny(text: false), seed: 5);
        using var c = new DiffusionTransformer(Tiny(text: false), seed: 6);
        var pb = b.state_dict();
        var pc = c.state_dict();
        Assert.All(a.state_dict(), kv => Assert.True(Same(kv.Value, pb[kv.Key]), kv.Key));
        Assert.Contains(a.state_dict(), kv => !Same(kv.Value, pc[kv.Key]));
    }

    [Fact]
    public void CheckpointRoundTripGivesTheSameModel()
    {
        using var scope = torch.NewDisposeScope();
        string dir = RepoPaths.NewTempDir("joint");
        try
        {
            using var data = ShapesDataset.Generate(8, seed: 1, text: true);
            var info = TrainCommand.BuildInfo(
                new TrainCommand.ModelChoice("S/4", BlockType.JointAttention, false, HiddenSize: 32, Depth: 2, NumHeads: 2, PatchSize: 8, LearnSigma: true),
                data, new TrainCommand.TextChoice());
            using var model = new DiffusionTransformer(info.Transformer, seed: 1);
            Perturb(model, 8);
            model.eval();
            string path = Path.Combine(dir, "joint.safetensors");
            DenoiserCheckpoint.Save(path, model, info);
            var (loaded, loadedInfo) = DenoiserCheckpoint.Load(path);
            using (loaded)
            {
                Assert.Equal(BlockType.JointAttention, loadedInfo.Transformer.Block);
                Assert.Contains("\"block\":\"joint_attention\"", loadedInfo.Transformer.ToJson());
                loaded.eval();
                var x = torch.randn(new long[] { 2, 3, 32, 32 }, generator: new Generator(3, torch.CPU));
                var t = torch.tensor(new long[] { 10, 900 });
                var ids = torch.tensor(new long[] { 1, 2, 3, 0, 2, 1, 0, 0 }).reshape(2, 4);
                Assert.True(Same(model.ForwardText(x, t, ids, null), loaded.ForwardText(x, t, ids, null)));
            }
        }
        finally { Directory.Delete(dir, true); }
    }

    [Theory]
    [InlineData("joint-attention")]
    [InlineData("joint_attention")]
    [InlineData("MM-DiT")]
    [InlineData("mmdit")]
    public void TheCliAcceptsTheBlockByItsNames(string name) => Assert.Equal(BlockType.JointAttention, TrainCommand.ParseBlock(name));

    [Fact]
    public void AFewTrainingStepsOnShapesTextReduceTheLoss()
    {
        using var data = ShapesDataset.Generate(64, seed: 1, text: true);
        var info = TrainCommand.BuildInfo(
            new TrainCommand.ModelChoice("S/4", BlockType.JointAttention, false, HiddenSize: 32, Depth: 2, NumHeads: 2, PatchSize: 8, LearnSigma: false),
            data, new TrainCommand.TextChoice());
        Assert.Equal(BlockType.JointAttention, info.Transformer.Block);
        var options = new DiffusionTrainingOptions { Steps = 30, BatchSize = 16, LearningRate = 3e-3, Seed = 1, EmaDecay = 0.9, GradClip = 1.0, HorizontalFlip = false };
        using var trainer = new DiffusionTrainer(info, new PixelTrainingData(data), options, runDir: null, device: torch.CPU);
        var losses = new List<double>();
        trainer.Run(p => losses.Add(p.Loss));
        double early = losses.Take(5).Average(), late = losses.TakeLast(5).Average();
        output.WriteLine($"joint attention, shapes text: loss {early:F4} (steps 1-5) -> {late:F4} (steps 26-30)");
        Assert.True(late < 0.92 * early, $"loss did not fall: {early:F4} -> {late:F4}");
    }

    [Fact]
    public void ParameterCountsAgainstInContextAtTheSameWidthAndDepth()
    {
        // DiT-S/2 sizes on 32×32×4 latents, 1000 classes, learned sigma (the docs' size check).
        long Count(BlockType block)
        {
            using var model = new DiffusionTransformer(TransformerConfig.FromPreset("S/2", 32, 4, 1000, block), seed: 0);
            return model.parameters().Sum(p => p.NumberOfElements);
        }
        long inContext = Count(BlockType.InContext), joint = Count(BlockType.JointAttention), adaLn = Count(BlockType.AdaLnZero);
        output.WriteLine($"S/2 class: in_context {inContext:N0}, adaln_zero {adaLn:N0}, joint_attention {joint:N0} ({(double)joint / inContext:F2}x in_context)");
        Assert.Equal(32_963_360, adaLn);
        Assert.Equal(22_043_168, inContext);
        Assert.Equal(62_817_376, joint);   // docs/transformer.md quotes these numbers
    }
}

/// <summary>A joint-attention forward with backward creates nothing off the model's device (see <see cref="DeviceTesting"/>).</summary>
[Collection(DefaultDeviceCollection.Name)]
public class JointAttentionDeviceTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ForwardAndBackwardCreateNothingOffTheModelsDevice(bool text)
    {
        using var scope = torch.NewDisposeScope();
        using var model = new DiffusionTransformer(JointAttentionTransformerTests.Tiny(text), seed: 1);
        JointAttentionTransformerTests.Perturb(model, 2);
        var (x, t) = JointAttentionTransformerTests.Batch(2);
        var cond = text ? torch.tensor(new long[] { 1, 2, 3, 4, 5, 6 }).reshape(2, 3) : torch.tensor(new long[] { 3, 10 });
        var mask = torch.tensor(new[] { true, true, false, false, false, false }).reshape(2, 3);
        using (new ImplicitDeviceTrap())
        {
            var y = text ? model.ForwardText(x, t, cond, mask) : model.forward(x, t, cond);
            AssertOn(torch.CPU, y);
            y.square().mean().backward();
        }
        AssertModuleOn(torch.CPU, model, withGradients: true);
    }
}
