using System.Text.Json.Nodes;
using LatentDiffusion.Denoisers;
using LatentDiffusion.Diffusion;
using LatentDiffusion.Pipelines;
using LatentDiffusion.Text;
using LatentDiffusion.Transformers;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests;

/// <summary>The class and text samplers share one loop; both must equal the loop written out by hand.</summary>
public class SamplerPipelineTests
{
    static void Perturb(nn.Module model, long seed)
    {
        using var _ = torch.no_grad();
        var g = new Generator((ulong)seed, torch.CPU);
        foreach (var p in model.parameters()) p.add_(torch.randn(p.shape, generator: g) * 0.1);
    }

    static readonly DiffusionConfig Diffusion = new() { LearnSigma = true };

    /// <summary>Seeded generator → start noise of each batch → the sampler with a guided doubled batch.</summary>
    static Tensor ByHand(Func<int, int, Denoiser> bind, int count, SamplingOptions o, bool clip)
    {
        var diffusion = Samplers.CreateDiffusion(new DiffusionConfig { LearnSigma = true }, o.Steps);
        var g = new Generator(0, torch.CPU);
        g.manual_seed(o.Seed);
        var parts = new List<Tensor>();
        for (int start = 0; start < count; start += o.BatchSize)
        {
            int n = Math.Min(o.BatchSize, count - start);
            var z = torch.randn(new long[] { n, 4, 8, 8 }, generator: g);
            parts.Add(Samplers.Sample(diffusion, o.Sampler, bind(start, n), z, g, o.Eta, clip));
        }
        return torch.cat(parts, 0);
    }

    [Fact]
    public void ClassSamplerEqualsTheLoopWrittenOut()
    {
        using var scope = torch.NewDisposeScope();
        var cfg = new TransformerConfig { InputSize = 8, PatchSize = 2, InChannels = 4, HiddenSize = 32, Depth = 1, NumHeads = 2, NumClasses = 3 }.Validate();
        using var model = new DiffusionTransformer(cfg, seed: 1);
        Perturb(model, 2);
        model.eval();
        var info = new DenoiserInfo(cfg, Diffusion, DataSpace.Latent, []);
        var o = new SamplingOptions { Steps = 3, Seed = 5, BatchSize = 2, GuidanceScale = 2.5, Sampler = SamplerKind.Ddpm };
        int[] labels = [0, 2, 1];
        using var pipe = DiffusionPipeline.FromModels(model, info);
        using var generated = pipe.Generate(labels, o);
        var actual = generated.Images;
        using var _ = torch.no_grad();
        var expected = ByHand((start, n) =>
        {
            var y = torch.tensor(labels.Skip(start).Take(n).Select(l => (long)l).Concat(Enumerable.Repeat(3L, n)).ToArray());
            return ClassifierFreeGuidance.OverDoubledBatch((x, t) => model.forward(x, t, y), o.GuidanceScale);
        }, labels.Length, o, clip: false);
        Assert.True(actual.equal(expected).all().item<bool>());
    }

    [Fact]
    public void TextSamplerEqualsTheLoopWrittenOut()
    {
        using var scope = torch.NewDisposeScope();
        string[] prompts = ["red circle", "blue", "blue square"];
        var vocab = WordVocabulary.Build(prompts);
        var cfg = new TransformerConfig
        {
            InputSize = 8, PatchSize = 2, InChannels = 4, HiddenSize = 32, Depth = 1, NumHeads = 2, NumClasses = 0, ClassDropoutProb = 0,
            Text = new TextConditionConfig { VocabSize = vocab.VocabSize, MaxTokens = 3 },
        }.Validate();
        using var model = new DiffusionTransformer(cfg, seed: 1);
        Perturb(model, 3);
        model.eval();
        var info = new DenoiserInfo(cfg, Diffusion, DataSpace.Latent, []) { Tokenizer = vocab };
        var o = new SamplingOptions { Steps = 3, Seed = 6, BatchSize = 2, GuidanceScale = 3.0 };
        using var pipe = DiffusionPipeline.FromModels(model, info);
        using var generated = pipe.Generate(prompts, o);
        var actual = generated.Images;
        using var _ = torch.no_grad();
        var expected = ByHand((start, n) =>
        {
            using var tokens = TokenBatch.Encode(vocab, prompts.Skip(start).Take(n).Concat(Enumerable.Repeat("", n)).ToArray(), 3);
            var ids = tokens.Ids.clone();
            var mask = tokens.Mask.clone();
            return ClassifierFreeGuidance.OverDoubledBatch((x, t) => model.ForwardText(x, t, ids, mask), o.GuidanceScale);
        }, prompts.Length, o, clip: false);
        Assert.True(actual.equal(expected).all().item<bool>());
        // Guidance changes the result (the empty caption is a different input from the prompt).
        using var unguidedImages = pipe.Generate(prompts, o with { GuidanceScale = 1.0 });
        var unguided = unguidedImages.Images;
        Assert.False(actual.allclose(unguided, rtol: 1e-4, atol: 1e-4));
    }
}
