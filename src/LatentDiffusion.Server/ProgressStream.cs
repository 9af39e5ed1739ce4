using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace LatentDiffusion.Server;

/// <summary>
/// A generation's progress as server-sent events: one <c>data:</c> line of <see cref="JobStatus"/> JSON per change
/// (queue position, step), at most about twenty a second, closing after the final state. Steps in between may be
/// skipped, but the last progress report always comes before the final state, even when the job finished before the
/// client connected, so a progress bar reaches its end. A client that goes away ends the stream, not the generation
/// (cancelling is an explicit call).
/// </summary>
public static class ProgressStream
{
    static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);
    static readonly TimeSpan MinInterval = TimeSpan.FromMilliseconds(50);

    public static async Task Write(GenerationJob job, HttpContext context)
    {
        var response = context.Response;
        var aborted = context.RequestAborted;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        // Tell proxies not to buffer the stream.
        response.Headers["X-Accel-Buffering"] = "no";
        try
        {
            JobStatus? sentRunning = null;
            while (true)
            {
                int seen = job.Version;
                var status = JobStatus.Of(job);
                bool finished = status.State is "done" or "failed" or "cancelled";
                if (finished
                    && JobStatus.LastProgress(job) is { } last
                    && (sentRunning is null || (sentRunning.Step, sentRunning.ImagesDone) != (last.Step, last.ImagesDone)))
                    await Send(response, last, aborted);
                await Send(response, status, aborted);
                if (status.State == "running") sentRunning = status;
                if (finished) return;
                await job.WaitForChangeAsync(seen, aborted);
                await Task.Delay(MinInterval, aborted);
            }
        }
        catch (OperationCanceledException) when (aborted.IsCancellationRequested) { }
    }

    static async Task Send(HttpResponse response, JobStatus status, CancellationToken aborted)
    {
        await response.WriteAsync($"data: {JsonSerializer.Serialize(status, Json)}\n\n", aborted);
        await response.Body.FlushAsync(aborted);
    }
}
