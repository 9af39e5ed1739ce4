using System.CommandLine;
using LatentDiffusion.Denoisers;
using LatentDiffusion.Cli;
using LatentDiffusion.Cli.Commands;
using LatentDiffusion.Data;
using LatentDiffusion.Diffusion;
using LatentDiffusion.Pipelines;
using LatentDiffusion.Text;
using LatentDiffusion.Training;
using LatentDiffusion.Transformers;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests;

public class TextTests
{
    static readonly string[] ShapesCaptions =
        ShapesDataset.GenerateScenes(200, seed: 3, text: true).Select(ShapesDataset.Caption).ToArray();

    static TransformerConfig TinyText(BlockType block, int vocab = 40, int maxTokens = 6, double dropout = 0.1, int encoderLayers = 0) => new TransformerConfig
    {
        InputSize = 8, PatchSize = 2, InChannels = 4, HiddenSize = 32, Depth = 2, NumHeads = 4, MlpRatio = 2.0,
        NumClasses = 0, ClassDropoutProb = 0, LearnSigma = true, Block = block,
        Text = new TextConditionConfig { Tokenizer = "word", VocabSize = vocab, MaxTokens = maxTokens, DropoutProb = dropout, EncoderLayers = encoderLayers },
    }.Validate();

    static void Perturb(nn.Module model, long seed, double std = 0.2)
    {
        using var _ = torch.no_grad();
        var g = new Generator((ulong)seed, torch.CPU);
        foreach (var p in model.parameters()) p.add_(torch.randn(p.shape, generator: g) * std);
    }

    static (Tensor x, Tensor t) Batch(int n, long seed = 7)
    {
        var g = new Generator((ulong)seed, torch.CPU);
        return (torch.randn(new long[] { n, 4, 8, 8 }, generator: g), torch.tensor(Enumerable.Range(0, n).Select(i => (long)(100 + i * 300)).ToArray()));
    }

    [Fact]
    public void WordVocabularyIsSortedWithPadZeroAndRoundTripsThroughJson()
    {
        var vocab = WordVocabulary.Build(ShapesCaptions);
        Assert.Equal(WordVocabulary.PadToken, vocab.Tokens[0]);
        Assert.Equal(vocab.Tokens.Skip(1).OrderBy(w => w, StringComparer.Ordinal), vocab.Tokens.Skip(1));
        // 3 shapes + 4 colours + 2 sizes + top/bottom/left/right/center + a/at/the/and = 18 words, plus <pad>.
        Assert.Equal(19, vocab.VocabSize);
        Assert.Equal(vocab.Tokens, WordVocabulary.Build(ShapesCaptions.Reverse()).Tokens);   // order of captions does not matter

        var loaded = WordVocabulary.FromJson(vocab.ToJson(), "test");
        Assert.Equal(vocab.Tokens, loaded.Tokens);
        ITextTokenizer tok = loaded;
        var (ids, mask) = tok.Encode("A large red circle, at the TOP left!", 10);
        Assert.Equal(new[] { true, true, true, true, true, true, true, true, false, false }, mask);
        Assert.Equal("a large red circle at the top left", loaded.Decode(ids));
        Assert.Equal(0, ids[9]);
        var (emptyIds, emptyMask) = tok.Encode("", 4);
        Assert.All(emptyMask, m => Assert.False(m));
        Assert.All(emptyIds, id => Assert.Equal(0, id));
        Assert.Equal(new[] { "don't", "stop", "2x" }, WordVocabulary.SplitWords("Don’t stop (2x)"));
    }

    [Fact]
    public void UnknownWordsAreAllListedWithTheKnownVocabulary()
    {
        ITextTokenizer vocab = WordVocabulary.Build(ShapesCaptions);
        var e = Assert.Throws<LdmException>(() => vocab.Encode("a purple hexagon at the top and a purple star", 32));
        Assert.Contains("'purple', 'hexagon', 'star'", e.Message);     // every unknown word once, in order
        Assert.Contains("3 words", e.Message);
        Assert.Contains("circle", e.Message);                            // says which words it knows
        var tooLong = Assert.Throws<LdmException>(() => vocab.Encode("a red circle at the top left", 3));
        Assert.Contains("at most 3", tooLong.Message);
        Assert.Throws<LdmException>(() => WordVocabulary.FromJson("{\"format\":\"x\"}", "file.safetensors"));
    }

    [Fact]
    public void Gpt2TokenizerGivesTheKnownGpt2Ids()
    {
        var gpt2 = Gpt2Tokenizer.Instance;
        Assert.Equal(new[] { 15496, 995 }, gpt2.Tokenize("Hello world"));
        Assert.Equal(50257, gpt2.VocabSize);
        Assert.Equal("a large red circle", gpt2.Decode(gpt2.Tokenize("a large red circle")));
        var (ids, mask) = ((ITextTokenizer)gpt2).Encode("Hello world", 4);
        Assert.Equal(new long[] { 15496, 995, 50256, 50256 }, ids);
        Assert.Equal(new[] { true, true, false, false }, mask);
    }

    public static IEnumerable<object[]> Blocks() => [[BlockType.InContext, 0], [BlockType.AdaLnZero, 0], [BlockType.CrossAttention, 0],
        [BlockType.InContext, 2], [BlockType.CrossAttention, 1]];

    [Theory]
    [MemberData(nameof(Blocks))]
    public void PaddedTokenIdsDoNotChangeTheOutputButRealOnesDo(BlockType block, int encoderLayers)
    {
        using var scope = torch.NewDisposeScope();
        using var model = new DiffusionTransformer(TinyText(block, encoderLayers: encoderLayers), seed: 1);
        Perturb(model, 2);
        model.eval();
        var (x, t) = Batch(2);
        var ids = torch.tensor(new long[] { 5, 9, 3, 0, 0, 0, 7, 0, 0, 0, 0, 0 }).reshape(2, 6);
        var mask = ids.ne(0);
        var a = model.ForwardText(x, t, ids, mask);
        var padded = ids.clone();
        padded[0, 4] = torch.tensor(30L);
        padded[1, 1] = torch.tensor(12L);
        var b = model.ForwardText(x, t, padded, mask);
        Assert.True(a.allclose(b, rtol: 1e-5, atol: 1e-6), "changing a padded id changed the output");
        // The same captions without the padding positions give the same output (positions 0..L-1 are used).
        var shortIds = ids.narrow(1, 0, 3);
        var c = model.ForwardText(x, t, shortIds, mask.narrow(1, 0, 3));
        Assert.True(a.allclose(c, rtol: 1e-5, atol: 1e-5));
        var real = ids.clone();
        real[0, 1] = torch.tensor(10L);
        var d = model.ForwardText(x, t, real, mask);
        Assert.False(a.narrow(0, 0, 1).allclose(d.narrow(0, 0, 1), rtol: 1e-4, atol: 1e-4), "a real token must matter");
        Assert.True(a.narrow(0, 1, 1).allclose(d.narrow(0, 1, 1), rtol: 1e-5, atol: 1e-6), "rows are independent");
    }

    [Fact]
    public void EmptyCaptionIsTheLearnedNullTokenWhateverThePaddingHolds()
    {
        using var scope = torch.NewDisposeScope();
        using var model = new DiffusionTransformer(TinyText(BlockType.InContext), seed: 1);
        Perturb(model, 4);
        model.eval();
        var (x, t) = Batch(2);
        using var empty = TokenBatch.Empty(2, 6, padId: 0);
        var a = model.ForwardText(x, t, empty.Ids, empty.Mask);
        var b = model.ForwardText(x, t, torch.full(2, 6, 17L), empty.Mask);
        Assert.True(a.allclose(b, rtol: 1e-5, atol: 1e-6));
        Assert.True(a.isfinite().all().item<bool>());
        var named = model.state_dict().Keys.Where(k => k.StartsWith("text_embedder.")).OrderBy(k => k).ToArray();
        Assert.Equal(new[] { "text_embedder.null_embedding", "text_embedder.position_embedding", "text_embedder.token_embedding.weight" }, named);
        Assert.DoesNotContain(model.state_dict().Keys, k => k.StartsWith("y_embedder"));
    }

    [Theory]
    [MemberData(nameof(Blocks))]
    public void TextModelRunsForwardAndBackwardWithTheRightShapes(BlockType block, int encoderLayers)
    {
        using var scope = torch.NewDisposeScope();
        var config = TinyText(block, encoderLayers: encoderLayers);
        using var model = new DiffusionTransformer(config, seed: 1);
        Perturb(model, 5);
        var (x, t) = Batch(3);
        var ids = torch.tensor(new long[] { 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }).reshape(3, 6);
        var output = model.ForwardText(x, t, ids, ids.ne(0));
        Assert.Equal(new long[] { 3, 8, 8, 8 }, output.shape);
        output.square().mean().backward();
        var grads = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad);
        Assert.True(grads["text_embedder.token_embedding.weight"]!.abs().sum().item<float>() > 0);
        Assert.True(grads["text_embedder.null_embedding"]!.abs().sum().item<float>() > 0);   // row 3 is the empty caption
        if (block == BlockType.InContext)
            Assert.Equal(new long[] { 1, 1 + 6, 32 }, model.state_dict()["extra_pos_embed"].shape);
        Assert.Throws<LdmException>(() => model.forward(x, t, torch.zeros(3, ScalarType.Int64)));
        Assert.Throws<LdmException>(() => model.ForwardText(x, t, torch.full(3, 6, 40L), null));        // id outside the vocabulary
        Assert.Throws<LdmException>(() => model.ForwardText(x, t, torch.zeros(3, 7, ScalarType.Int64), null));  // longer than max_tokens
    }

    [Fact]
    public void ClassConfigsKeepTheirJsonAndTextConfigsRoundTrip()
    {
        var cls = new TransformerConfig { InputSize = 8, HiddenSize = 32, NumHeads = 4, Depth = 2, NumClasses = 10 };
        Assert.DoesNotContain("\"text\"", cls.ToJson());
        Assert.Equal("class", cls.Condition);
        var text = TinyText(BlockType.InContext);
        var back = TransformerConfig.FromJson(text.ToJson());
        Assert.Equal(text, back);
        Assert.Contains("\"text\":{\"tokenizer\":\"word\",\"vocab_size\":40,\"max_tokens\":6,\"dropout_prob\":0.1}", text.ToJson());
        Assert.Throws<LdmException>(() => (text with { Text = text.Text! with { Tokenizer = "sentencepiece" } }).Validate());
        // A caption encoder is written only when there is one, so configs without it keep the JSON above.
        var encoded = TinyText(BlockType.InContext, encoderLayers: 2);
        Assert.Contains("\"dropout_prob\":0.1,\"encoder_layers\":2}", encoded.ToJson());
        Assert.Equal(encoded, TransformerConfig.FromJson(encoded.ToJson()));
        Assert.Throws<LdmException>(() => (encoded with { Text = encoded.Text! with { EncoderLayers = -1 } }).Validate());
        Assert.Throws<LdmException>(() => (encoded with { Text = encoded.Text! with { EncoderLayers = TextConditionConfig.MaxEncoderLayers + 1 } }).Validate());
    }

    [Fact]
    public void CaptionEncoderStartsAsTheIdentityAndThenTiesEachWordToTheOthers()
    {
        using var scope = torch.NewDisposeScope();
        var ids = torch.tensor(new long[] { 5, 9, 3, 8, 0, 0 }).reshape(1, 6);
        var swapped = torch.tensor(new long[] { 5, 9, 3, 11, 0, 0 }).reshape(1, 6);   // only the last real word differs
        var mask = ids.ne(0);
        using var plain = new TextEncoder(TinyText(BlockType.InContext).Text!, 32);
        using var encoder = new TextEncoder(TinyText(BlockType.InContext, encoderLayers: 2).Text!, 32);
        plain.InitializeWeights(new Generator(3, torch.CPU));
        encoder.InitializeWeights(new Generator(3, torch.CPU));
        Assert.Equal(["layers.0.attn.proj.bias", "layers.0.attn.proj.weight", "layers.0.attn.qkv.bias", "layers.0.attn.qkv.weight"],
            encoder.state_dict().Keys.Where(k => k.StartsWith("layers.0.attn")).OrderBy(k => k, StringComparer.Ordinal));
        // Zero residual outputs: at initialisation the layers pass the embeddings through, only the final norm acts.
        var (embedded, _) = plain.Encode(ids, mask);
        var (encoded, encodedMask) = encoder.Encode(ids, mask);
        var normed = nn.functional.layer_norm(embedded, [32], eps: 1e-6);
        Assert.True(encoded.allclose(normed, rtol: 1e-4, atol: 1e-5));
        Assert.Equal(mask.data<bool>().ToArray(), encodedMask.data<bool>().ToArray());

        // Trained (here: perturbed) layers mix the caption: the first word's vector depends on the fourth word,
        // which without the encoder it cannot.
        Perturb(encoder, 8);
        Perturb(plain, 8);
        Tensor First(TextEncoder e, Tensor caption) => e.Encode(caption, mask).tokens.select(1, 0);
        Assert.False(First(encoder, ids).allclose(First(encoder, swapped), rtol: 1e-4, atol: 1e-4), "the encoder must mix the words");
        Assert.True(First(plain, ids).allclose(First(plain, swapped)), "without layers each word is embedded alone");
        // Padding stays invisible: a padded id changes no real token's vector.
        var padded = ids.clone();
        padded[0, 5] = torch.tensor(17L);
        Assert.True(encoder.Encode(ids, mask).tokens.narrow(1, 0, 4).allclose(encoder.Encode(padded, mask).tokens.narrow(1, 0, 4), rtol: 1e-5, atol: 1e-6));
    }

    [Fact]
    public void CaptionDropoutEmptiesAboutPOfTheCaptionsDeterministically()
    {
        using var scope = torch.NewDisposeScope();
        const int n = 20000;
        using var batch = new TokenBatch(torch.ones(n, 4, ScalarType.Int64), torch.ones(n, 4, ScalarType.Bool));
        var (a, dropped) = CaptionDropout.Apply(batch, 0.1, padId: 0, new Generator(11));
        double rate = dropped.to(ScalarType.Float32).mean().item<float>();
        Assert.InRange(rate, 0.09, 0.11);   // 0.1 ± 4.7 sigma
        Assert.True(a.Mask.any(1).logical_not().eq(dropped).all().item<bool>());
        Assert.True(a.Ids.sum(1).eq(torch.where(dropped, 0L, 4L)).all().item<bool>());
        var (b, _) = CaptionDropout.Apply(batch, 0.1, padId: 0, new Generator(11));
        Assert.True(a.Mask.eq(b.Mask).all().item<bool>());
        var (none, noneDropped) = CaptionDropout.Apply(batch, 0.0, padId: 0, new Generator(11));
        Assert.False(noneDropped.any().item<bool>());
    }

    static DenoiserInfo TinyShapesTextInfo(ImageDataset data) => TrainCommand.BuildInfo(
        new TrainCommand.ModelChoice("S/4", BlockType.InContext, false, HiddenSize: 32, Depth: 2, NumHeads: 2, PatchSize: 8, LearnSigma: false),
        data, new TrainCommand.TextChoice());

    [Fact]
    public void TextTrainingIsDeterministicAndTheCheckpointCarriesTheVocabulary()
    {
        using var data = ShapesDataset.Generate(32, seed: 5, text: true);
        var info = TinyShapesTextInfo(data);
        Assert.Equal(ConditionKind.Text, info.Condition);
        var options = new DiffusionTrainingOptions { Steps = 3, BatchSize = 8, LearningRate = 1e-3, EmaDecay = 0.5, Seed = 9, CheckpointEvery = 3 };
        var dirs = new[] { RepoPaths.NewTempDir("text-train-a"), RepoPaths.NewTempDir("text-train-b") };
        var weights = new List<Dictionary<string, Tensor>>();
        foreach (var dir in dirs)
        {
            using var trainer = new DiffusionTrainer(info, new PixelTrainingData(data), options, dir);
            trainer.Run();
            weights.Add(trainer.Model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone()));
        }
        foreach (var (k, v) in weights[0]) Assert.True(v.equal(weights[1][k]).all().item<bool>(), $"{k} differs between identical runs");

        string modelPath = Path.Combine(dirs[0], DiffusionTrainer.ModelFile);
        var peek = DenoiserCheckpoint.PeekInfo(modelPath);
        var vocab = Assert.IsType<WordVocabulary>(peek.Tokenizer);
        Assert.Equal(((WordVocabulary)info.Tokenizer!).Tokens, vocab.Tokens);
        using (var pipe = DiffusionPipeline.Load(modelPath))
        {
            var options2 = new SamplingOptions { Steps = 3, Seed = 4, GuidanceScale = 3.0 };
            string[] prompts = ["a large red circle at the top left", "a small blue square at the center"];
            using var s1 = pipe.Generate(prompts, options2);
            using var s2 = pipe.Generate(prompts, options2);
            Assert.Equal(new long[] { 2, 3, 32, 32 }, s1.Images.shape);
            Assert.Equal(prompts, s1.Prompts);
            Assert.True(s1.Images.equal(s2.Images).all().item<bool>(), "same seed, same samples");
            var e = Assert.Throws<LdmException>(() => pipe.Generate(["a purple circle"], options2));
            Assert.Contains("'purple'", e.Message);
            Assert.Throws<LdmException>(() => pipe.Generate([0, 1], options2));
        }
    }

    [Fact]
    public void Bf16TextModelIsCloseToTheFloat32Model()
    {
        using var scope = torch.NewDisposeScope();
        var config = TinyText(BlockType.InContext);
        using var model = new DiffusionTransformer(config, seed: 1);
        Perturb(model, 6, std: 0.05);
        model.eval();
        using var bf16 = new DiffusionTransformer(config);
        IO.StateDict.Load(bf16, model.state_dict(), "test");
        bf16.to(ScalarType.BFloat16);
        bf16.eval();
        var (x, t) = Batch(2);
        var ids = torch.tensor(new long[] { 3, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }).reshape(2, 6);
        var a = model.ForwardText(x, t, ids, ids.ne(0));
        var b = bf16.ForwardText(x, t, ids, ids.ne(0));
        Assert.Equal(ScalarType.Float32, b.dtype);
        double err = (a - b).abs().max().item<float>(), scale = a.abs().max().item<float>();
        Assert.True(err < 0.05 * Math.Max(1, scale), $"bf16 error {err} for outputs up to {scale}");
    }

    [Fact]
    public void CaptionedFolderTrainsAGpt2TextModel()
    {
        string folder = RepoPaths.NewTempDir("text-folder");
        var scenes = ShapesDataset.GenerateScenes(6, seed: 2, text: true);
        var lines = new List<string>();
        for (int i = 0; i < scenes.Length; i++)
        {
            IO.ImageFile.Write(Path.Combine(folder, $"img{i}.png"), ShapesDataset.Render(scenes[i]));
            lines.Add(System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, string> { ["file_name"] = $"img{i}.png", ["text"] = ShapesDataset.Caption(scenes[i]) }));
        }
        File.WriteAllLines(Path.Combine(folder, CaptionedFolderDataset.MetadataFileName), lines);

        using var data = TrainCommand.LoadData(folder, 0, 32, 3, false, 0);
        Assert.True(TrainCommand.IsTextCondition("auto", folder, data));
        var info = TrainCommand.BuildInfo(
            new TrainCommand.ModelChoice("S/4", BlockType.CrossAttention, false, HiddenSize: 32, Depth: 1, NumHeads: 2, PatchSize: 8, LearnSigma: true),
            data, new TrainCommand.TextChoice("gpt2", MaxTokens: 24));
        Assert.Equal(new TextConditionConfig { Tokenizer = "gpt2", VocabSize = 50257, MaxTokens = 24, DropoutProb = 0.1 }, info.Transformer.Text);
        string run = RepoPaths.NewTempDir("text-folder-run");
        using (var trainer = new DiffusionTrainer(info, new PixelTrainingData(data), new DiffusionTrainingOptions { Steps = 1, BatchSize = 3, Seed = 1 }, run))
            trainer.Run();
        var loaded = DenoiserCheckpoint.PeekInfo(Path.Combine(run, DiffusionTrainer.ModelFile));
        Assert.Same(Gpt2Tokenizer.Instance, loaded.Tokenizer);
        var tooShort = Assert.Throws<LdmOptionException>(() => TrainCommand.BuildInfo(
            new TrainCommand.ModelChoice("S/4", BlockType.InContext, false, 32, 1, 2, 8, true), data, new TrainCommand.TextChoice("word", MaxTokens: 2)));
        Assert.StartsWith("TextConditionConfig.MaxTokens must be at least", tooShort.Message);
        Assert.StartsWith("--max-text-tokens must be at least", Cli.OptionNames.MessageOf(tooShort));
    }

    // The shared in-process host: it serialises console redirection across test classes.
    static (int code, string stderr) RunCli(params string[] args)
    {
        var result = CliTestHost.Run(args);
        return (result.ExitCode, result.Stderr);
    }

    [Fact]
    public void CliTrainsATinyTextModelOnShapesTextAndSamplesAPrompt()
    {
        string run = RepoPaths.NewTempDir("text-cli-run"), samples = RepoPaths.NewTempDir("text-cli-samples");
        var (code, err) = RunCli("train", "--data", "shapes-text:count=32", "--steps", "2", "--batch-size", "4",
            "--preset", "S/4", "--hidden-size", "32", "--depth", "1", "--num-heads", "2", "--patch-size", "8", "--no-learn-sigma", "--out", run);
        Assert.True(code == 0, err);
        string model = Path.Combine(run, DiffusionTrainer.ModelFile);
        Assert.Equal(ConditionKind.Text, DenoiserCheckpoint.PeekInfo(model).Condition);
        Assert.True(File.Exists(Path.Combine(run, "samples_0000002.png")));

        (code, err) = RunCli("sample", "--model", model, "--prompt", "a large red circle at the top left",
            "--prompt", "a small green triangle at the bottom", "--num", "4", "--steps", "2", "--out", samples);
        Assert.True(code == 0, err);
        var pngs = Directory.GetFiles(samples, "0*.png").Select(Path.GetFileName).OrderBy(f => f).ToArray();
        Assert.Equal(4, pngs.Length);
        Assert.StartsWith("00000_a-large-red-circle-at-the-top-left", pngs[0]);
        Assert.True(File.Exists(Path.Combine(samples, "grid.png")));
        Assert.Equal(4, File.ReadAllLines(Path.Combine(samples, "prompts.txt")).Length);

        (code, err) = RunCli("sample", "--model", model, "--prompt", "a huge purple circle", "--steps", "2", "--out", samples);
        Assert.Equal(1, code);
        Assert.Contains("'huge', 'purple'", err);
        (code, err) = RunCli("sample", "--model", model, "--classes", "3", "--steps", "2", "--out", samples);
        Assert.Equal(1, code);
        Assert.Contains("--prompt", err);
    }

    [Fact]
    public void CliTrainsATextModelWithACaptionEncoderThatLoadsBack()
    {
        string run = RepoPaths.NewTempDir("text-encoder-run");
        var (code, err) = RunCli("train", "--data", "shapes-text:count=16", "--steps", "2", "--batch-size", "4", "--text-encoder-layers", "1",
            "--preset", "S/4", "--hidden-size", "32", "--depth", "1", "--num-heads", "2", "--patch-size", "8", "--no-learn-sigma", "--out", run);
        Assert.True(code == 0, err);
        string model = Path.Combine(run, DiffusionTrainer.ModelFile);
        Assert.Equal(1, DenoiserCheckpoint.PeekInfo(model).Backbone.Text!.EncoderLayers);
        using var pipe = DiffusionPipeline.Load(model);
        Assert.Contains(pipe.Network.state_dict().Keys, k => k == "text_embedder.layers.0.attn.qkv.weight");

        (code, err) = RunCli("train", "--data", "shapes-text:count=16", "--steps", "2", "--text-encoder-layers", "-1", "--out", RepoPaths.NewTempDir("text-encoder-bad"));
        Assert.Equal(1, code);
        Assert.Contains("--text-encoder-layers", err);
    }
}
