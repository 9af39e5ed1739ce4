namespace LatentDiffusion.Server;

/// <summary>A generation request as the API reports it (JSON of <c>GET /api/jobs/{id}</c> and of each progress event).</summary>
public sealed record JobStatus(
    string Id, string Model, string State, int Position, double Fraction, int Step, int StepsPerBatch, int ImagesDone,
    int BatchImages, int TotalImages, string? Error, string Command, string? Grid, IReadOnlyList<string> Images, IReadOnlyList<string> Captions, double? Seconds)
{
    public static JobStatus Of(GenerationJob job)
    {
        var p = job.Progress;
        bool done = job.State == GenerationState.Done;
        string prefix = $"/api/jobs/{job.Id}";
        return new JobStatus(job.Id, job.Model.Id, job.State.ToString().ToLowerInvariant(), job.QueuePosition,
            done ? 1.0 : p?.Fraction ?? 0.0, p?.Step ?? 0, p?.StepsPerBatch ?? job.Sample.Options.Steps, p?.ImagesDone ?? 0,
            p?.BatchImages ?? Math.Min(job.Sample.Count, job.Sample.Options.BatchSize), job.Sample.Count, job.Error, job.Command,
            done ? $"{prefix}/grid.png" : null,
            done ? Enumerable.Range(0, job.Pngs.Count - 1).Select(i => $"{prefix}/images/{i}.png").ToList() : [],
            job.Captions, done ? Math.Round(job.Seconds, 3) : null);
    }

    /// <summary>
    /// The job's last progress report as a running state, for a stream that sees the job finished before it sent that
    /// step: null when the sampler never reported.
    /// </summary>
    public static JobStatus? LastProgress(GenerationJob job) =>
        job.Progress is { } p
            ? Of(job) with { State = "running", Fraction = p.Fraction, Grid = null, Images = [], Captions = [], Seconds = null }
            : null;
}
