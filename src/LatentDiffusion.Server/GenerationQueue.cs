using System.Diagnostics;
using LatentDiffusion.Pipelines;

namespace LatentDiffusion.Server;

/// <summary>
/// Runs generation requests one at a time per model (a CPU has no room for two samplers of one model at once, and
/// interleaving them would only make both slower), the others waiting in order with their position known. At most
/// <see cref="ServerOptions.QueueCapacity"/> requests wait over all models; one more is a <see cref="QueueFullException"/>.
/// A cancelled request leaves the queue at once, or stops its sampler between two steps and frees the model.
/// Finished requests are kept for download, the oldest dropped past <see cref="ServerOptions.KeptResults"/>.
/// </summary>
public sealed class GenerationQueue : IDisposable
{
    /// <summary>One model's waiting requests and the one it runs.</summary>
    sealed class Lane
    {
        public readonly LinkedList<GenerationJob> Waiting = new();
        public GenerationJob? Running;
    }

    readonly object _gate = new();
    readonly ServerOptions _options;
    readonly PipelineCache _pipelines;
    readonly Dictionary<string, Lane> _lanes = new(StringComparer.Ordinal);
    readonly Dictionary<string, GenerationJob> _jobs = new(StringComparer.Ordinal);
    readonly Queue<string> _finished = new();
    readonly List<Task> _workers = [];
    int _waiting;
    bool _disposed;

    public GenerationQueue(ServerOptions options, PipelineCache pipelines)
    {
        _options = options;
        _pipelines = pipelines;
    }

    /// <summary>Requests waiting (not running) over all models.</summary>
    public int Waiting { get { lock (_gate) return _waiting; } }

    /// <summary>Requests running now.</summary>
    public int Running { get { lock (_gate) return _lanes.Values.Count(l => l.Running is not null); } }

    /// <summary>
    /// Images one request for <paramref name="model"/> may ask for in the memory available now: the memory is shared by
    /// every request the server may hold at once (the queue's capacity, plus one running per model in use), so accepted
    /// requests never run each other out of memory. Loads the model's pipeline (as its generation would).
    /// </summary>
    public long ImagesThatFit(ModelEntry model)
    {
        // Peek, not Get: this runs on request threads, beside the lane that may be sampling with the pipeline.
        var pipeline = _pipelines.Peek(model);
        int running;
        lock (_gate) running = _lanes.Count + (_lanes.ContainsKey(model.Path) ? 0 : 1);
        return pipeline.MaxImagesInMemory() / ((long)_options.QueueCapacity + running);
    }

    /// <summary>Queues a checked request; throws <see cref="QueueFullException"/> when the queue is full.</summary>
    public GenerationJob Submit(ModelEntry model, ResolvedSample sample, string command)
    {
        var job = new GenerationJob(Guid.NewGuid().ToString("N"), model, sample, command);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!_lanes.TryGetValue(model.Path, out var lane)) _lanes[model.Path] = lane = new Lane();
            bool idle = lane.Running is null && lane.Waiting.Count == 0;
            if (!idle && _waiting >= _options.QueueCapacity)
                throw new QueueFullException($"the generation queue is full ({_options.QueueCapacity} requests waiting); try again when one has finished.");
            _jobs[job.Id] = job;
            if (idle)
            {
                // An idle model starts at once: the request never counts as waiting.
                lane.Running = job;
                job.SetRunning();
                _workers.Add(Task.Factory.StartNew(() => Drain(lane), TaskCreationOptions.LongRunning));
            }
            else
            {
                lane.Waiting.AddLast(job);
                _waiting++;
                Renumber(lane);
            }
            _workers.RemoveAll(w => w.IsCompleted);
        }
        return job;
    }

    /// <summary>The request of <paramref name="id"/>; a <see cref="NotFoundException"/> when it is unknown or dropped.</summary>
    public GenerationJob Find(string id)
    {
        lock (_gate)
            return _jobs.GetValueOrDefault(id)
                ?? throw new NotFoundException($"no generation '{id}' (finished ones are kept for the last {_options.KeptResults} requests).");
    }

    /// <summary>Cancels a request: a waiting one leaves the queue, a running one stops after its current step.</summary>
    public GenerationJob Cancel(string id)
    {
        var job = Find(id);
        lock (_gate)
        {
            if (job.State == GenerationState.Queued && _lanes.TryGetValue(job.Model.Path, out var lane) && lane.Waiting.Remove(job))
            {
                _waiting--;
                job.MarkCancelled();
                Retire(job);
                Renumber(lane);
                return job;
            }
        }
        if (!job.IsFinished) job.Cancellation.Cancel();
        return job;
    }

    /// <summary>Runs the lane's requests, the one set running first, until none waits; then ends (the next request
    /// starts a new worker).</summary>
    void Drain(Lane lane)
    {
        while (true)
        {
            GenerationJob job;
            lock (_gate) job = lane.Running!;
            Run(job);
            lock (_gate)
            {
                Retire(job);
                if (_disposed || lane.Waiting.First is not { } next)
                {
                    lane.Running = null;
                    return;
                }
                lane.Waiting.RemoveFirst();
                _waiting--;
                lane.Running = next.Value;
                next.Value.SetRunning();
                Renumber(lane);
            }
        }
    }

    void Run(GenerationJob job)
    {
        var token = job.Cancellation.Token;
        try
        {
            token.ThrowIfCancellationRequested();
            var pipeline = _pipelines.Get(job.Model);
            var clock = Stopwatch.StartNew();
            using var images = job.Sample.Generate(pipeline, job.Report, token);
            double seconds = clock.Elapsed.TotalSeconds;
            var classNames = job.Model.Info?.ClassNames;
            var pngs = new List<byte[]> { images.GridPng(job.Sample.GridColumns, job.Sample.PngText(job.Model.Path, null, classNames)) };
            for (int i = 0; i < images.Count; i++) pngs.Add(images.Png(i, job.Sample.PngText(job.Model.Path, i, classNames)));
            job.Finish(pngs, Enumerable.Range(0, images.Count).Select(images.Caption).ToList(), seconds);
        }
        catch (OperationCanceledException) { job.MarkCancelled(); }
        catch (LdmException e) { job.Fail(e.Message); }
        // A model that breaks in an unforeseen way fails its request, not the server.
        catch (Exception e) { job.Fail($"{e.GetType().Name}: {e.Message.Split('\n')[0]}"); }
    }

    /// <summary>Every waiting request's position: the number of requests ahead of it for its model.</summary>
    void Renumber(Lane lane)
    {
        int ahead = lane.Running is null ? 0 : 1;
        foreach (var job in lane.Waiting) job.SetQueuePosition(ahead++);
    }

    /// <summary>Keeps a finished request for download, dropping the oldest past the limit.</summary>
    void Retire(GenerationJob job)
    {
        _finished.Enqueue(job.Id);
        // The token source is not disposed: a late cancel of a finished request must stay harmless (it holds no timer).
        while (_finished.Count > _options.KeptResults) _jobs.Remove(_finished.Dequeue());
    }

    /// <summary>Cancels everything and waits for the running samplers to stop.</summary>
    public void Dispose()
    {
        Task[] workers;
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            foreach (var lane in _lanes.Values)
            {
                foreach (var job in lane.Waiting) job.MarkCancelled();
                lane.Waiting.Clear();
                lane.Running?.Cancellation.Cancel();
            }
            _waiting = 0;
            workers = [.. _workers];
        }
        Task.WaitAll(workers, TimeSpan.FromSeconds(30));
    }
}
