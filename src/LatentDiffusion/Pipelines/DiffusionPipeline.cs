using LatentDiffusion.Autoencoders;
using LatentDiffusion.Denoisers;
using LatentDiffusion.Diffusion;
using LatentDiffusion.Distributed;
using LatentDiffusion.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Pipelines;

/// <summary>
/// A trained model ready to generate: the denoiser, its diffusion process, the autoencoder that decodes its latents,
/// its tokenizer and its recommended sampling settings, on one device. One <see cref="Generate(IReadOnlyList{int}, SamplingOptions?, Action{GenerationProgress}?, CancellationToken)"/>
/// call turns class ids, prompts or a count (unconditional) into images:
/// <code>
/// using var pipe = DiffusionPipeline.Load("models/shapes-class.safetensors");
/// using var images = pipe.Generate([0, 4, 8]);
/// images.SaveGrid("shapes.png");
/// </code>
/// Sampling is deterministic: the same seed gives the same images (the noise is drawn on the CPU, so on any device).
/// </summary>
public sealed class DiffusionPipeline : IDisposable
{
    readonly DenoiserNetwork _network;
    readonly LatentDecoder? _decoder;
    readonly bool _ownsNetwork;

    DiffusionPipeline(DenoiserNetwork network, DenoiserInfo info, LatentDecoder? decoder, Device device, ScalarType dtype, bool ownsNetwork, string source)
    {
        _network = network;
        _decoder = decoder;
        _ownsNetwork = ownsNetwork;
        Info = info;
        Device = device;
        Dtype = dtype;
        Source = source;
    }

    /// <summary>What the model is: backbone, diffusion, space, condition, tokenizer, autoencoder, recommended sampling.</summary>
    public DenoiserInfo Info { get; }
    /// <summary>Where the networks run.</summary>
    public Device Device { get; }
    /// <summary>The dtype of the denoiser's weights and activations (the autoencoder decodes in float32).</summary>
    public ScalarType Dtype { get; }
    /// <summary>The checkpoint path, or a description of an in-memory model.</summary>
    public string Source { get; }
    /// <summary>The denoiser network (in <see cref="Dtype"/>, on <see cref="Device"/>).</summary>
    public DenoiserNetwork Network => _network;
    /// <summary>The autoencoder decoding the latents, or null (pixel models, or a latent model loaded without it).</summary>
    public AutoencoderKL? Autoencoder => _decoder?.Autoencoder;

    /// <summary>Class or text.</summary>
    public ConditionKind Condition => Info.Condition;
    /// <summary>Class models: the number of classes (ids 0 … NumClasses−1).</summary>
    public int NumClasses => Info.Backbone.Text is null ? Info.Backbone.NumClasses : 0;
    /// <summary>Class models: the names of the class ids, when the model knows them.</summary>
    public IReadOnlyList<string> ClassNames => Info.ClassNames;
    /// <summary>Text models: the tokenizer of the prompts; null for class models.</summary>
    public ITextTokenizer? Tokenizer => Info.Tokenizer;
    /// <summary>Text models with a word vocabulary: the words a prompt may use; null otherwise (GPT-2 BPE takes any text).</summary>
    public IReadOnlyList<string>? Vocabulary => (Info.Tokenizer as WordVocabulary)?.Tokens.Where(t => t != WordVocabulary.PadToken).ToList();
    /// <summary>Whether <see cref="Generate(int, SamplingOptions?, Action{GenerationProgress}?, CancellationToken)"/> is possible: the model has an unconditional input (null class or empty caption).</summary>
    public bool CanGenerateUnconditionally => Info.Backbone.HasUnconditionalInput;
    /// <summary>True when the pipeline returns images (pixel models, or latent models with their autoencoder); false: latents.</summary>
    public bool ReturnsImages => Info.IsPixelSpace || _decoder is not null;
    /// <summary>Side of the returned images (or latents) in pixels.</summary>
    public int ImageSize => _decoder is { } d ? d.Autoencoder.Config.Resolution : Info.Backbone.InputSize;
    /// <summary>Channels of the returned images (or latents).</summary>
    public int ImageChannels => _decoder is { } d ? d.Autoencoder.Config.OutCh : Info.Backbone.InChannels;
    /// <summary>The sampling settings the model recommends (stored in its checkpoint), used when a call gives none.</summary>
    public SamplingOptions DefaultOptions => SamplingOptions.From(Info.SamplingOrDefault);

    /// <summary>
    /// Loads a denoiser checkpoint and, for a latent model, its autoencoder: <paramref name="autoencoderPath"/>, else the
    /// one the model names beside its file. With <paramref name="decode"/> false a latent model returns latents.
    /// </summary>
    /// <param name="path">The denoiser checkpoint (<c>.safetensors</c> written by this library or converted).</param>
    /// <param name="device">Where to run (default: the CPU); e.g. <c>torch.CUDA</c> with the CUDA build of libtorch.</param>
    /// <param name="dtype">Float32 (null, the default), BFloat16, Float16, or <see cref="ComputeDtype.Auto"/> (the faster of
    /// float32 and bf16 on this machine) for the denoiser; the schedule arithmetic stays float32/float64.</param>
    /// <param name="autoencoderPath">The autoencoder of a latent model; null = the one the checkpoint names beside it.</param>
    /// <param name="decode">False: a latent model returns latents and no autoencoder is loaded.</param>
    public static DiffusionPipeline Load(string path, Device? device = null, ComputeDtype? dtype = null,
        string? autoencoderPath = null, bool decode = true)
    {
        if (Directory.Exists(path)) throw new LdmException($"'{path}' is a folder; give the path of a denoiser checkpoint (.safetensors).");
        if (!File.Exists(path)) throw new LdmException($"denoiser checkpoint '{path}' does not exist; give a file made by ldm train or ldm convert.");
        device ??= torch.CPU;
        var dt = (dtype ?? ComputeDtype.Float32).Resolve(device);
        var info = DenoiserCheckpoint.PeekInfo(path);
        if (autoencoderPath is not null && info.IsPixelSpace)
            throw new LdmException($"'{path}' is a pixel-space denoiser, its samples are images already; load it without an autoencoder.");
        if (autoencoderPath is not null && !File.Exists(autoencoderPath))
            throw new LdmException($"autoencoder '{autoencoderPath}' does not exist; give a file made by ldm train-autoencoder or ldm convert --kind autoencoder.");
        // The autoencoder is found and checked before the (larger) denoiser is read.
        var decoder = decode ? LatentDecoder.ForDenoiser(path, info, autoencoderPath, batchSize: 64) : null;
        try
        {
            var (network, loaded) = DenoiserCheckpoint.Load(path);
            network.to(device).to(dt);
            network.eval();
            decoder?.Autoencoder.to(device);
            return new DiffusionPipeline(network, loaded, decoder, device, dt, ownsNetwork: true, path);
        }
        catch
        {
            decoder?.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A pipeline over networks in memory (a model being trained, say): they are used where they are and not disposed
    /// with the pipeline; a <paramref name="dtype"/> other than the network's (null: the network's; <see cref="ComputeDtype.Auto"/>:
    /// the faster of float32 and bf16 on this machine) makes a private copy.
    /// </summary>
    public static DiffusionPipeline FromModels(DenoiserNetwork network, DenoiserInfo info, AutoencoderKL? autoencoder = null,
        ComputeDtype? dtype = null)
    {
        info.Check("the model in memory");
        if (autoencoder is not null)
            LatentDecoder.CheckCompatible(autoencoder.Config, info, "the autoencoder in memory", "the model in memory");
        var device = network.ParameterDevice;
        var dt = dtype?.Resolve(device) ?? network.ParameterDtype;
        CheckDtype(dt);
        var net = network;
        bool owns = false;
        if (dt != network.ParameterDtype)
        {
            net = info.Backbone.Build();
            IO.StateDict.Load(net, network.state_dict(), "the model in memory");
            net.to(device).to(dt);
            owns = true;
        }
        net.eval();
        var decoder = autoencoder is null ? null : new LatentDecoder(autoencoder, 64, ownsAutoencoder: false);
        return new DiffusionPipeline(net, info, decoder, device, dt, owns, "the model in memory");
    }

    static void CheckDtype(ScalarType dtype)
    {
        if (dtype is not (ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16))
            throw new LdmOptionException(nameof(DiffusionPipeline), "dtype", dtype, "be Float32, BFloat16 or Float16");
    }

    /// <summary>Bytes that <paramref name="count"/> returned images take while a Generate call gathers them: the
    /// float32 batches and their concatenation.</summary>
    public long BytesToHold(long count) => 2 * count * ImageChannels * (long)ImageSize * ImageSize * sizeof(float);

    /// <summary>How many images one Generate call can return in the memory available now (GenerateBatches streams any number).</summary>
    public long MaxImagesInMemory() => Diagnostics.ProcessMemory.AvailableBytes() / Math.Max(1, BytesToHold(1));

    /// <summary>
    /// Refuses, before any sampling, a Generate call whose images cannot be held in the memory available now
    /// (an <see cref="LdmOptionException"/> on <c>GeneratedImages.Count</c>), instead of running out of memory later.
    /// </summary>
    public void CheckFitsInMemory(long count)
    {
        long available = Diagnostics.ProcessMemory.AvailableBytes();
        long need = BytesToHold(count);
        if (need <= available) return;
        throw new LdmOptionException(nameof(GeneratedImages), nameof(GeneratedImages.Count), count,
            $"be at most {available / BytesToHold(1)} here ({count} images of {ImageChannels}×{ImageSize}×{ImageSize} need {Gb(need)} GB in memory, {Gb(available)} GB is available)",
            "make fewer images per run");
    }

    static string Gb(long bytes) => (bytes / 1e9).ToString(bytes < 10e9 ? "F2" : "F0", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>One image per class id (repeat an id for several images of it).</summary>
    public GeneratedImages Generate(IReadOnlyList<int> classIds, SamplingOptions? options = null,
        Action<GenerationProgress>? onProgress = null, CancellationToken cancellationToken = default)
    {
        CheckFitsInMemory(classIds.Count);
        return Collect(Batches(Conditions.ForClasses(this, classIds), options, onProgress, cancellationToken), classIds.ToArray(), null);
    }

    /// <summary>One image per prompt (repeat a prompt for several images of it). Unknown words fail before any sampling.</summary>
    public GeneratedImages Generate(IReadOnlyList<string> prompts, SamplingOptions? options = null,
        Action<GenerationProgress>? onProgress = null, CancellationToken cancellationToken = default)
    {
        CheckFitsInMemory(prompts.Count);
        return Collect(Batches(Conditions.ForPrompts(this, prompts), options, onProgress, cancellationToken), null, prompts.ToArray());
    }

    /// <summary><paramref name="count"/> unconditional images (the null class or the empty caption; no guidance).</summary>
    public GeneratedImages Generate(int count, SamplingOptions? options = null,
        Action<GenerationProgress>? onProgress = null, CancellationToken cancellationToken = default)
    {
        CheckFitsInMemory(count);
        return Collect(Batches(Conditions.Unconditional(this, count), options, onProgress, cancellationToken), null, null);
    }

    /// <summary>
    /// The images of <see cref="Generate(IReadOnlyList{int}, SamplingOptions?, Action{GenerationProgress}?, CancellationToken)"/>
    /// made by the ranks of <paramref name="group"/> together: each rank generates its share of whole batches
    /// (<see cref="Shard.OfBatches"/>; the images equal a single process's) and every rank gets them all, in order.
    /// Every rank must call it with the same arguments. With fewer batches than ranks, every rank makes them all.
    /// </summary>
    public GeneratedImages Generate(IReadOnlyList<int> classIds, IProcessGroup group, SamplingOptions? options = null,
        Action<GenerationProgress>? onProgress = null, CancellationToken cancellationToken = default)
    {
        var ids = classIds.ToArray();
        return Gather(group, ids.Length, options, part => Batches(Conditions.ForClasses(this, ids), options, onProgress, cancellationToken, part), ids, null);
    }

    /// <summary>The prompt overload of <see cref="Generate(IReadOnlyList{int}, IProcessGroup, SamplingOptions?, Action{GenerationProgress}?, CancellationToken)"/>.</summary>
    public GeneratedImages Generate(IReadOnlyList<string> prompts, IProcessGroup group, SamplingOptions? options = null,
        Action<GenerationProgress>? onProgress = null, CancellationToken cancellationToken = default)
    {
        var all = prompts.ToArray();
        return Gather(group, all.Length, options, part => Batches(Conditions.ForPrompts(this, all), options, onProgress, cancellationToken, part), null, all);
    }

    /// <summary>The share of <paramref name="count"/> images that rank <paramref name="rank"/> of <paramref name="size"/>
    /// generates in <see cref="Generate(IReadOnlyList{int}, IProcessGroup, SamplingOptions?, Action{GenerationProgress}?, CancellationToken)"/>
    /// (all of them when there are fewer batches than ranks).</summary>
    public Shard ShareOf(int count, int rank, int size, SamplingOptions? options = null)
    {
        int batch = (options ?? DefaultOptions).BatchSize;
        return (count + batch - 1) / batch < size ? new Shard(0, count) : Shard.OfBatches(count, batch, rank, size);
    }

    GeneratedImages Gather(IProcessGroup group, int count, SamplingOptions? options, Func<Shard, IEnumerable<(Tensor images, int start)>> batches,
        int[]? ids, string[]? prompts)
    {
        CheckFitsInMemory(count);
        var part = ShareOf(count, group.Rank, group.Size, options);
        using var mine = Collect(batches(part), null, null);
        if (part.Count == count) return new GeneratedImages(mine.Images.alias(), !ReturnsImages, ids, prompts, ClassNames);
        return new GeneratedImages(group.AllGather(mine.Images), !ReturnsImages, ids, prompts, ClassNames);
    }

    /// <summary>
    /// The images of <see cref="Generate(IReadOnlyList{int}, SamplingOptions?, Action{GenerationProgress}?, CancellationToken)"/>
    /// one model batch at a time (same values), so that large sample sets (evaluation) never sit in memory whole.
    /// The caller disposes each batch.
    /// </summary>
    public IEnumerable<GeneratedImages> GenerateBatches(IReadOnlyList<int> classIds, SamplingOptions? options = null,
        Action<GenerationProgress>? onProgress = null, CancellationToken cancellationToken = default)
    {
        var ids = classIds.ToArray();
        return Wrap(Batches(Conditions.ForClasses(this, ids), options, onProgress, cancellationToken),
            (start, n) => ids[start..(start + n)], null);
    }

    /// <summary>
    /// The batches of <paramref name="images"/> (a run of whole batches, e.g. a rank's <see cref="ShareOf"/>) among
    /// the images of <see cref="GenerateBatches(IReadOnlyList{int}, SamplingOptions?, Action{GenerationProgress}?, CancellationToken)"/>,
    /// with the same values; the batches before it are replayed without the network.
    /// </summary>
    public IEnumerable<GeneratedImages> GenerateBatches(IReadOnlyList<int> classIds, Shard images, SamplingOptions? options = null,
        Action<GenerationProgress>? onProgress = null, CancellationToken cancellationToken = default)
    {
        var ids = classIds.ToArray();
        return Wrap(Batches(Conditions.ForClasses(this, ids), options, onProgress, cancellationToken, images),
            (start, n) => ids[start..(start + n)], null);
    }

    /// <summary>The prompt overload of the sharded GenerateBatches.</summary>
    public IEnumerable<GeneratedImages> GenerateBatches(IReadOnlyList<string> prompts, Shard images, SamplingOptions? options = null,
        Action<GenerationProgress>? onProgress = null, CancellationToken cancellationToken = default)
    {
        var all = prompts.ToArray();
        return Wrap(Batches(Conditions.ForPrompts(this, all), options, onProgress, cancellationToken, images),
            null, (start, n) => all[start..(start + n)]);
    }

    /// <summary>The images of the prompt overload of Generate, one model batch at a time (see the class-id overload).</summary>
    public IEnumerable<GeneratedImages> GenerateBatches(IReadOnlyList<string> prompts, SamplingOptions? options = null,
        Action<GenerationProgress>? onProgress = null, CancellationToken cancellationToken = default)
    {
        var all = prompts.ToArray();
        return Wrap(Batches(Conditions.ForPrompts(this, all), options, onProgress, cancellationToken),
            null, (start, n) => all[start..(start + n)]);
    }

    IEnumerable<GeneratedImages> Wrap(IEnumerable<(Tensor images, int start)> batches, Func<int, int, int[]>? ids, Func<int, int, string[]>? prompts)
    {
        foreach (var (images, start) in batches)
        {
            int n = (int)images.shape[0];
            yield return new GeneratedImages(images, !ReturnsImages, ids?.Invoke(start, n), prompts?.Invoke(start, n), ClassNames);
        }
    }

    GeneratedImages Collect(IEnumerable<(Tensor images, int start)> batches, int[]? ids, string[]? prompts)
    {
        var parts = new List<Tensor>();
        try
        {
            foreach (var (images, _) in batches) parts.Add(images);
            return new GeneratedImages(parts.Count == 1 ? parts[0].alias() : torch.cat(parts, 0), !ReturnsImages, ids, prompts, ClassNames);
        }
        finally
        {
            foreach (var p in parts) p.Dispose();
        }
    }

    /// <summary>Samples, decodes and moves to the CPU batch by batch: (float32 images, index of the batch's first image).</summary>
    IEnumerable<(Tensor images, int start)> Batches(Conditions conditions, SamplingOptions? options,
        Action<GenerationProgress>? onProgress, CancellationToken cancellationToken, Shard? images = null)
    {
        var o = options ?? DefaultOptions;
        o.Validate();
        conditions.CheckGuidance(o);
        var diffusion = Samplers.CreateDiffusion(Info.Diffusion, o.Steps);
        bool clip = o.ClipDenoised ?? Info.IsPixelSpace;
        int total = conditions.Count;
        cancellationToken.ThrowIfCancellationRequested();
        return Run();

        IEnumerable<(Tensor, int)> Run()
        {
            using (conditions)
            {
                int start = (int)(images?.Start ?? 0);
                foreach (var samples in SamplingLoop.RunBatches(Info.Backbone, Device, diffusion, total, o, clip,
                    (done, n, step, steps) =>
                    {
                        cancellationToken.ThrowIfCancellationRequested();
                        onProgress?.Invoke(new GenerationProgress(done, total, n, step + 1, steps));
                    },
                    (first, n) => conditions.Bind(_network, first, n, o), images))
                {
                    Tensor images;
                    using (samples)
                    using (var scope = torch.NewDisposeScope())
                    {
                        var decoded = _decoder is not null ? _decoder.Decode(samples) : samples;
                        var result = decoded.to(ScalarType.Float32).cpu();
                        if (ReferenceEquals(result, samples)) result = samples.alias();
                        images = result.MoveToOuterDisposeScope();
                    }
                    int n = (int)images.shape[0];
                    yield return (images, start);   // the caller may dispose it at once
                    start += n;
                }
            }
        }
    }

    /// <summary>Frees the network (when the pipeline loaded it) and the decoder.</summary>
    public void Dispose()
    {
        if (_ownsNetwork) _network.Dispose();
        _decoder?.Dispose();
    }
}
