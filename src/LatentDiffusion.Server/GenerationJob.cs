using LatentDiffusion.Pipelines;

namespace LatentDiffusion.Server;

/// <summary>
/// One generation request: what to make, where it stands (queue position, progress) and, when done, its PNGs with
/// their settings in the text chunks. Every change bumps <see cref="Version"/> and wakes the progress streams waiting
/// in <see cref="WaitForChangeAsync"/>.
/// </summary>
public sealed class GenerationJob
{
    readonly object _gate = new();
    TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public GenerationJob(string id, ModelEntry model, ResolvedSample sample, string command)
    {
        Id = id;
        Model = model;
        Sample = sample;
        Command = command;
    }

    /// <summary>The id the API knows it by (random: one client cannot guess another's).</summary>
    public string Id { get; }
    public ModelEntry Model { get; }
    public ResolvedSample Sample { get; }
    /// <summary>The <c>ldm sample</c> command that makes the same images.</summary>
    public string Command { get; }
    /// <summary>Cancelled by the client (or the server stopping); the sampler stops between two steps.</summary>
    public CancellationTokenSource Cancellation { get; } = new();

    public GenerationState State { get; private set; } = GenerationState.Queued;
    /// <summary>Requests ahead of this one for its model (0: next or running).</summary>
    public int QueuePosition { get; private set; }
    /// <summary>The latest progress report of the sampler, null before the first step.</summary>
    public GenerationProgress? Progress { get; private set; }
    /// <summary>Why it failed, a one-line message.</summary>
    public string? Error { get; private set; }
    /// <summary>The grid, then every image, as PNG with settings; empty until done.</summary>
    public IReadOnlyList<byte[]> Pngs { get; private set; } = [];
    /// <summary>Each image's caption (class name or prompt); empty until done.</summary>
    public IReadOnlyList<string> Captions { get; private set; } = [];
    /// <summary>Seconds the sampling took.</summary>
    public double Seconds { get; private set; }
    /// <summary>Bumped on every change.</summary>
    public int Version { get; private set; }

    public bool IsFinished => State is GenerationState.Done or GenerationState.Failed or GenerationState.Cancelled;

    internal void SetQueuePosition(int position) => Change(() => QueuePosition = position);
    internal void SetRunning() => Change(() => { State = GenerationState.Running; QueuePosition = 0; });
    internal void Report(GenerationProgress progress) => Change(() => Progress = progress);
    internal void Finish(IReadOnlyList<byte[]> pngs, IReadOnlyList<string> captions, double seconds) =>
        Change(() => { Pngs = pngs; Captions = captions; Seconds = seconds; State = GenerationState.Done; });
    internal void Fail(string error) => Change(() => { Error = error; State = GenerationState.Failed; });
    internal void MarkCancelled() => Change(() => State = GenerationState.Cancelled);

    /// <summary>Waits until <see cref="Version"/> differs from <paramref name="seen"/> (at once if it does already).</summary>
    public Task WaitForChangeAsync(int seen, CancellationToken cancellationToken)
    {
        lock (_gate)
            return Version != seen ? Task.CompletedTask : _changed.Task.WaitAsync(cancellationToken);
    }

    void Change(Action change)
    {
        TaskCompletionSource woken;
        lock (_gate)
        {
            change();
            Version++;
            woken = _changed;
            _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        woken.TrySetResult();
    }
}
