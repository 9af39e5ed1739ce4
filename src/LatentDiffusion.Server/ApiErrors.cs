using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace LatentDiffusion.Server;

/// <summary>
/// Turns the library's one-line errors into HTTP answers with <c>{"error": message}</c>: a bad request is 400 (the
/// message the command line prints), an unknown name 404, a full queue 429. Anything else is a 500 with a one-line
/// message; the server keeps running.
/// </summary>
public static class ApiErrors
{
    public static async Task Handle(HttpContext context, Func<Task> next)
    {
        try { await next(); }
        catch (Exception e) when (!context.Response.HasStarted && e is not OperationCanceledException)
        {
            context.Response.Clear();
            context.Response.StatusCode = e switch
            {
                NotFoundException => StatusCodes.Status404NotFound,
                QueueFullException => StatusCodes.Status429TooManyRequests,
                LdmException or JsonException or BadHttpRequestException => StatusCodes.Status400BadRequest,
                _ => StatusCodes.Status500InternalServerError,
            };
            if (e is QueueFullException) context.Response.Headers.RetryAfter = "5";
            string message = e is JsonException j ? $"the request body is not the JSON this call takes: {j.Message.Split('\n')[0]}" : e.Message.Split('\n')[0];
            await context.Response.WriteAsJsonAsync(new { error = message });
        }
    }
}
