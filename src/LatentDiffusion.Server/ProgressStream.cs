using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace LatentDiffusion.Server;

/// <summary>
/// A generation's progress as server-sent events: one <c>data:</c> line of <see cref="JobStatus"/> JSON per change
/// (queue position, step), at most about twenty a second, closing after the final state. A client that goes away ends
/// the stream, not the generation (cancelling is an explicit call).
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
            while (true)
            {
                int seen = job.Version;
                var status = JobStatus.Of(job);
                await response.WriteAsync($"data: {JsonSerializer.Serialize(status, Json)}\n\n", aborted);
                await response.Body.FlushAsync(aborted);
                if (job.IsFinished) return;
                await job.WaitForChangeAsync(seen, aborted);
                await Task.Delay(MinInterval, aborted);
            }
        }
        catch (OperationCanceledException) when (aborted.IsCancellationRequested) { }
    }
}
