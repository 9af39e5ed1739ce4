using LatentDiffusion.Pipelines;

namespace LatentDiffusion.Server;

/// <summary>
/// Loaded pipelines by model file, kept between requests (loading reads the weights; sampling a small grid takes less).
/// A file rewritten since it was loaded is loaded again. Only the model's own queue lane uses its pipeline, so one
/// pipeline never runs two generations at once.
/// </summary>
public sealed class PipelineCache(TorchSharp.torch.Device? device = null) : IDisposable
{
    readonly object _gate = new();
    readonly Dictionary<string, (DateTime written, DiffusionPipeline pipeline)> _loaded = new(StringComparer.Ordinal);

    /// <summary>The pipeline of <paramref name="model"/>, loaded on first use; an <see cref="LdmException"/> for a file that cannot be loaded.</summary>
    public DiffusionPipeline Get(ModelEntry model)
    {
        DateTime written = File.GetLastWriteTimeUtc(model.Path);
        lock (_gate)
        {
            if (_loaded.TryGetValue(model.Path, out var held) && held.written == written) return held.pipeline;
        }
        var pipeline = DiffusionPipeline.Load(model.Path, device);
        lock (_gate)
        {
            if (_loaded.Remove(model.Path, out var stale)) stale.pipeline.Dispose();
            _loaded[model.Path] = (written, pipeline);
        }
        return pipeline;
    }

    public void Dispose()
    {
        lock (_gate)
        {
            foreach (var (_, held) in _loaded) held.pipeline.Dispose();
            _loaded.Clear();
        }
    }
}
