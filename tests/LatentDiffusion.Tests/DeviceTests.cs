using LatentDiffusion.Autoencoders;
using LatentDiffusion.Diffusion;
using LatentDiffusion.Evaluation;
using LatentDiffusion.Text;
using LatentDiffusion.Transformers;
using TorchSharp;
using static LatentDiffusion.Tests.DeviceTesting;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests;

/// <summary>
/// Every tensor created inside the library follows the device of its inputs and modules, never torch's default
/// device: the models run on the CPU with the default device set to meta (<see cref="DeviceTesting"/>), so a
/// tensor made without a device breaks the run or fails the device assertions.
/// </summary>
[Collection(DefaultDeviceCollection.Name)]
public class DeviceTests
{
    [Fact]
    public void TheTrapPutsImplicitTensorsOnMetaAndMetaRefusesCpuPartners()
    {
        // The premise of every test below: if either failed, they would stop catching implicitly placed tensors.
        using var cpu = torch.ones(2, 3, device: torch.CPU);
        using (new ImplicitDeviceTrap())
        {
            using var implicitOnes = torch.ones(2, 3);
            AssertOn(Meta, implicitOnes);
            var e = Assert.ThrowsAny<Exception>(() => (implicitOnes + cpu).Dispose());
            Assert.Contains("same device", e.Message);
        }
        Assert.Equal(DeviceType.CPU, torch.get_default_device().type);
    }

    [Fact]
    public void ParseNamesDevices()
    {
        Assert.Equal(DeviceType.CPU, Devices.Parse("cpu").type);
        Assert.Equal(DeviceType.CPU, Devices.Parse(" CPU ").type);
        Assert.Equal(Devices.CudaAvailable ? DeviceType.CUDA : DeviceType.CPU, Devices.Parse("auto").type);
        Assert.Contains("cpu, cuda", Assert.Throws<LdmException>(() => Devices.Parse("gpu")).Message);
        Assert.Throws<LdmException>(() => Devices.Parse("cuda:x"));
        if (!Devices.CudaAvailable)
        {
            var e = Assert.Throws<LdmException>(() => Devices.Parse("cuda:0"));
            Assert.Contains("TorchSharp-cuda-linux", e.Message);
        }
    }

    public static TheoryData<BlockType, bool> BlocksAndConditions()
    {
        var data = new TheoryData<BlockType, bool>();
        foreach (var block in new[] { BlockType.InContext, BlockType.AdaLnZero, BlockType.CrossAttention })
            foreach (var text in new[] { false, true }) data.Add(block, text);
        return data;
    }

    static DiffusionTransformer Model(BlockType block, bool text, bool longSkips = false)
    {
        var config = new TransformerConfig
        {
            InputSize = 8, PatchSize = 4, InChannels = 4, HiddenSize = 32, Depth = 3, NumHeads = 2, NumClasses = 5,
            LearnSigma = true, Block = block, LongSkips = longSkips && block == BlockType.InContext,
            Text = text ? new TextConditionConfig { VocabSize = 11, MaxTokens = 4 } : null,
        }.Validate();
        return new DiffusionTransformer(config, seed: 3);
    }

    /// <summary>The model bound to CPU labels 0, 1, ..., null or to captions of 0, 1 and 2 real tokens (0 = the empty caption).</summary>
    static Denoiser Conditioned(DiffusionTransformer model, long n)
    {
        if (model.Config.Text is null)
        {
            var y = torch.tensor(Enumerable.Range(0, (int)n).Select(i => (long)(i % (model.NullClass + 1))).ToArray(), device: torch.CPU);
            return (x, t) => model.forward(x, t, y);
        }
        using var g = CpuGenerator(9);
        var ids = torch.randint(0, 11, [n, 4], dtype: ScalarType.Int64, device: torch.CPU, generator: g);
        var mask = torch.arange(4, device: torch.CPU).unsqueeze(0) < torch.arange(n, device: torch.CPU).remainder(3).unsqueeze(1);
        return (x, t) => model.ForwardText(x, t, ids, mask);
    }

    [Theory]
    [MemberData(nameof(BlocksAndConditions))]
    public void ForwardCreatesNothingOffTheModelsDevice(BlockType block, bool text)
    {
        using var model = Model(block, text, longSkips: true);
        using var x = Images(6, 4, 8);
        using var g = CpuGenerator(4);
        using var t = torch.randint(0, 1000, [6], dtype: ScalarType.Int64, device: torch.CPU, generator: g);
        var denoiser = Conditioned(model, 6);
        using var trap = new ImplicitDeviceTrap();
        foreach (bool training in new[] { false, true })   // training: the label-dropout draws
        {
            model.train(training);
            model.LabelDropoutGenerator = CpuGenerator(5);
            using var output = denoiser(x, t);
            AssertOn(torch.CPU, output);
            Assert.Equal(new long[] { 6, 8, 8, 8 }, output.shape);
            Assert.True(output.isfinite().all().item<bool>());
        }
    }

    [Theory]
    [MemberData(nameof(BlocksAndConditions))]
    public void TrainingLossAndBackwardCreateNothingOffTheModelsDevice(BlockType block, bool text)
    {
        using var model = Model(block, text);
        model.train();
        var diffusion = new GaussianDiffusion(new DiffusionConfig { Steps = 50 });
        using var x0 = Images(4, 4, 8);
        var denoiser = Conditioned(model, 4);
        using var trap = new ImplicitDeviceTrap();
        using var generator = CpuGenerator(7);
        model.LabelDropoutGenerator = generator;
        var (t, weights) = new TimestepSampler(diffusion).Sample(4, generator, torch.CPU);
        using var noise = torch.randn(x0.shape, device: torch.CPU, generator: generator);
        AssertOn(torch.CPU, t, weights);
        var losses = diffusion.TrainingLosses(Checked(denoiser, torch.CPU), x0, t, noise);
        AssertOn(torch.CPU, losses.Loss, losses.Mse, losses.Vb);
        using var loss = (losses.Loss * weights).mean();
        loss.backward();
        AssertModuleOn(torch.CPU, model, withGradients: true);
        Assert.True(double.IsFinite(loss.item<float>()));
    }

    public static TheoryData<SamplerKind, BlockType> SamplersAndBlocks()
    {
        var data = new TheoryData<SamplerKind, BlockType>();
        foreach (var kind in Enum.GetValues<SamplerKind>())
            foreach (var block in new[] { BlockType.InContext, BlockType.AdaLnZero, BlockType.CrossAttention }) data.Add(kind, block);
        return data;
    }

    [Theory]
    [MemberData(nameof(SamplersAndBlocks))]
    public void GuidedSamplingLoopCreatesNothingOffTheModelsDevice(SamplerKind kind, BlockType block)
    {
        using var model = Model(block, text: false);
        model.eval();
        var diffusion = Samplers.CreateDiffusion(new DiffusionConfig { Steps = 100 }, 4);
        using var labels = torch.tensor(new long[] { 0, 3, model.NullClass, model.NullClass }, device: torch.CPU);
        using var z = Images(2, 4, 8);
        using var trap = new ImplicitDeviceTrap();
        var guided = ClassifierFreeGuidance.OverDoubledBatch(Checked((x, t) => model.forward(x, t, labels), torch.CPU), 4.0);
        using var generator = CpuGenerator(11);
        int steps = 0;
        using var sample = Samplers.Sample(diffusion, kind, Checked(guided, torch.CPU), z, generator, eta: 1.0,
            onStep: s => { AssertOn(torch.CPU, s.Sample, s.PredXstart); steps++; });
        AssertOn(torch.CPU, sample);
        Assert.Equal(4, steps);
        Assert.True(sample.isfinite().all().item<bool>());
    }

    [Fact]
    public void OfficialGuidanceFormCreatesNothingOffTheModelsDevice()
    {
        using var model = Model(BlockType.AdaLnZero, text: false);
        model.eval();
        var diffusion = Samplers.CreateDiffusion(new DiffusionConfig { Steps = 100 }, 3);
        using var labels = torch.tensor(new long[] { 1, model.NullClass }, device: torch.CPU);
        using var z = Images(2, 4, 8);
        using var trap = new ImplicitDeviceTrap();
        var guided = ClassifierFreeGuidance.OfficialDitForm((x, t) => model.ForwardWithCfg(x, t, labels, 1.5, 4), 1.5);
        using var generator = CpuGenerator(2);
        using var sample = diffusion.PSampleLoop(Checked(guided, torch.CPU), z, clipDenoised: false, generator);
        AssertOn(torch.CPU, sample);
    }

    [Fact]
    public void TokensAndCaptionDropoutFollowTheRequestedDevice()
    {
        var vocabulary = WordVocabulary.Build(["a red circle", "a blue square"]);
        using var trap = new ImplicitDeviceTrap();
        using var batch = TokenBatch.Encode(vocabulary, ["a red circle", null], 4, torch.CPU);
        using var empty = TokenBatch.Empty(2, 4, vocabulary.PadId, torch.CPU);
        AssertOn(torch.CPU, batch.Ids, batch.Mask, empty.Ids, empty.Mask);
        using var generator = CpuGenerator(3);
        var (dropped, rows) = CaptionDropout.Apply(batch, 0.5, vocabulary.PadId, generator);
        using (dropped) using (rows) AssertOn(torch.CPU, dropped.Ids, dropped.Mask, rows);
        // No device named: torch's default one.
        using var onDefault = TokenBatch.Encode(vocabulary, ["a red circle"], 4);
        AssertOn(Meta, onDefault.Ids, onDefault.Mask);
    }

    [Fact]
    public void AutoencoderRoundTripCreatesNothingOffTheModelsDevice()
    {
        using var autoencoder = new AutoencoderKL(new AutoencoderConfig { Ch = 32, ChMult = [1, 2], NumResBlocks = 1, Resolution = 16, ZChannels = 4, EmbedDim = 4 });
        using var images = Images(2, 3, 16);
        using var trap = new ImplicitDeviceTrap();
        using var scope = torch.NewDisposeScope();
        autoencoder.ResetParameters(CpuGenerator(1));
        AssertModuleOn(torch.CPU, autoencoder);
        var posterior = autoencoder.Encode(images);
        AssertOn(torch.CPU, posterior.Mean, posterior.Std, posterior.Kl());
        using var generator = CpuGenerator(4);
        var z = posterior.Sample(generator);
        AssertOn(torch.CPU, z);
        var decoded = autoencoder.Decode(z);
        AssertOn(torch.CPU, decoded);
        Assert.Equal(images.shape, decoded.shape);
        var (reconstruction, _) = autoencoder.Reconstruct(images, samplePosterior: true, generator);
        AssertOn(torch.CPU, reconstruction);
    }

    [Fact]
    public void ModelInitialisationDrawsOnTheCpuWhateverTheDefaultDevice()
    {
        // The same seed gives the same weights: the draws do not follow the default device (docs/devices.md).
        using var model = Model(BlockType.InContext, text: true);
        var before = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        using (new ImplicitDeviceTrap()) model.InitializeWeights(3);
        foreach (var (name, p) in model.state_dict())
        {
            AssertOn(torch.CPU, p);
            Assert.True(before[name].equal(p).all().item<bool>(), $"{name} changed");
        }
    }

    [Fact]
    public void ClassifierFeaturesComeFromTheClassifiersDevice()
    {
        using var classifier = new DomainClassifier(new DomainClassifierConfig { Channels = 1, ImageSize = 28, ClassNames = ["a", "b"], Widths = [8, 8, 8], FeatureDim = 16 });
        using var extractor = new ClassifierFeatureExtractor(classifier, "test");
        using var images = torch.zeros([3, 1, 28, 28], ScalarType.Byte, torch.CPU);
        using var trap = new ImplicitDeviceTrap();
        var (features, logits) = extractor.Extract(images);
        using (features) using (logits)
        {
            AssertOn(torch.CPU, features, logits);
            Assert.Equal(new long[] { 3, 16 }, features.shape);
        }
    }
}
