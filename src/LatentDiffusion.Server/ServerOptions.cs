namespace LatentDiffusion.Server;

/// <summary>What <c>ldm serve</c> serves and how much work it takes on.</summary>
public sealed record ServerOptions
{
    /// <summary>Folders whose <c>.safetensors</c> denoisers the generate page offers.</summary>
    public IReadOnlyList<string> ModelFolders { get; init; } = [];
    /// <summary>Folders whose training runs (folders with a <c>metrics.jsonl</c>) and studies (a <c>study.json</c>) the runs page shows.</summary>
    public IReadOnlyList<string> RunFolders { get; init; } = [];
    /// <summary>The address to listen on; loopback unless the user asks otherwise.</summary>
    public string Host { get; init; } = "127.0.0.1";
    /// <summary>The port (0: any free port, as the tests use).</summary>
    public int Port { get; init; } = 5000;
    /// <summary>Images one request may ask for: a grid of 64 32×32 images is what `ldm sample` makes by default. A request
    /// must also fit in the free memory it shares with every request the server may hold (GenerationQueue.ImagesThatFit).</summary>
    public int MaxImagesPerRequest { get; init; } = 64;
    /// <summary>Sampling steps one request may ask for. Steps cost time, not memory: DDPM's 1000 would hold a model's slot
    /// for minutes on a CPU while later requests wait.</summary>
    public int MaxStepsPerRequest { get; init; } = 250;
    /// <summary>Requests waiting (not running) over all models; one more is refused with HTTP 429.</summary>
    public int QueueCapacity { get; init; } = 16;
    /// <summary>Finished generations kept for download; older ones are dropped so memory stays flat.</summary>
    public int KeptResults { get; init; } = 32;
    /// <summary>The folder the page's <c>ldm sample</c> commands are meant to run from: model paths inside it are shown
    /// relative to it (null: the server's working folder, where <c>ldm serve</c> was started).</summary>
    public string? CommandFolder { get; init; }
    /// <summary>Where the models run (null: the CPU).</summary>
    public TorchSharp.torch.Device? Device { get; init; }
    /// <summary>Images per model batch: ldm sample's default, so the command shown needs no --batch-size and times compare.</summary>
    public int BatchSize { get; init; } = new Pipelines.SampleRequest().BatchSize;

    /// <summary>Throws <see cref="LdmException"/> for settings the server cannot run with.</summary>
    public void Validate()
    {
        if (ModelFolders.Count == 0 && RunFolders.Count == 0)
            throw new LdmException("give at least one --models or --runs folder to serve.");
        foreach (var (flag, folders) in new[] { ("--models", ModelFolders), ("--runs", RunFolders) })
            foreach (var f in folders)
                if (!Directory.Exists(f)) throw new LdmException($"{flag} '{f}' is not a folder; give an existing folder.");
        LdmServer.Address(Host);
        if (Port is < 0 or > 65535) throw new LdmException($"--port must be 0 to 65535, got {Port}.");
        if (MaxImagesPerRequest < 1) throw new LdmException($"--max-images must be at least 1, got {MaxImagesPerRequest}.");
        if (MaxStepsPerRequest < 1) throw new LdmException($"--max-steps must be at least 1, got {MaxStepsPerRequest}.");
        if (QueueCapacity < 0) throw new LdmException($"--queue must be at least 0, got {QueueCapacity}.");
    }
}
