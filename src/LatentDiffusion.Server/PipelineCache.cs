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
    readonly object _loadGate = new();
    readonly Dictionary<string, (DateTime written, DiffusionPipeline pipeline)> _loaded = new(StringComparer.Ordinal);

    /// <summary>The pipeline of <paramref name="model"/>, loaded on first use; an <see cref="LdmException"/> for a file that
    /// cannot be loaded. Only the model's lane calls it: it may replace (and dispose) the pipeline of a rewritten file.</summary>
    public DiffusionPipeline Get(ModelEntry model)
    {
        // One load at a time: two callers loading the same file would each replace, and dispose, the other's pipeline.
        lock (_loadGate)
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
    }

    /// <summary>
    /// The loaded pipeline of <paramref name="model"/> for a look at its settings from a request thread (even one whose
    /// file changed since), loading it only when none is; never replaces or disposes a pipeline its lane may be using.
    /// </summary>
    public DiffusionPipeline Peek(ModelEntry model)
    {
        lock (_loadGate)
        {
            lock (_gate)
            {
                if (_loaded.TryGetValue(model.Path, out var held)) return held.pipeline;
            }
            return Get(model);
        }
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
