using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace LatentDiffusion.Server.Tests;

/// <summary>The calls the tests make, in the API's JSON.</summary>
public static class ApiClient
{
    /// <summary>POSTs a generate request; the status code and the JSON answer (a job status or <c>{"error"}</c>).</summary>
    public static async Task<(HttpStatusCode status, JsonElement body)> Generate(HttpClient client, object request)
    {
        using var response = await client.PostAsJsonAsync("/api/generate", request);
        return (response.StatusCode, await response.Content.ReadFromJsonAsync<JsonElement>());
    }

    /// <summary>Reads a job's progress stream to its end; every event's JSON, in order.</summary>
    public static async Task<List<JsonElement>> Events(HttpClient client, string id, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        using var response = await client.GetAsync($"/api/jobs/{id}/events", HttpCompletionOption.ResponseHeadersRead, cts.Token);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cts.Token));
        var events = new List<JsonElement>();
        while (await reader.ReadLineAsync(cts.Token) is { } line)
            if (line.StartsWith("data: ", StringComparison.Ordinal)) events.Add(JsonSerializer.Deserialize<JsonElement>(line[6..]));
        return events;
    }

    public static string State(this JsonElement status) => status.GetProperty("state").GetString()!;
    public static string Id(this JsonElement status) => status.GetProperty("id").GetString()!;
    public static string Error(this JsonElement body) => body.GetProperty("error").GetString()!;

    /// <summary>Polls a job until <paramref name="until"/> holds of its status.</summary>
    public static async Task<JsonElement> WaitFor(HttpClient client, string id, Func<JsonElement, bool> until, TimeSpan timeout)
    {
        var end = DateTime.UtcNow + timeout;
        while (true)
        {
            var status = await client.GetFromJsonAsync<JsonElement>($"/api/jobs/{id}");
            if (until(status)) return status;
            if (DateTime.UtcNow > end) throw new TimeoutException($"job {id} is still {status}");
            await Task.Delay(50);
        }
    }
}
