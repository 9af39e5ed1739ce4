using System.Net;

namespace LatentDiffusion.Server.Tests;

/// <summary>One generation at a time per model, the others queued with their position, a bounded queue (429), and
/// cancellation that frees the slot.</summary>
public class QueueApiTests
{
    /// <summary>A request that holds the model for long enough to queue others behind it (it is cancelled).</summary>
    static object Long => new { model = "shapes-class", classes = new[] { 0 }, num = 64, steps = 1000 };
    static object Short => new { model = "shapes-class", classes = new[] { 1 }, num = 1, steps = 2 };

    [Fact]
    public async Task QueueIsBoundedAndCancellingFreesTheSlot()
    {
        var options = new ServerOptions { ModelFolders = [TestPaths.Models], QueueCapacity = 1, MaxStepsPerRequest = 1000 };
        await using var server = await TestServer.InProcess(options);
        var client = server.Client;

        var (s1, running) = await ApiClient.Generate(client, Long);
        Assert.Equal(HttpStatusCode.Accepted, s1);
        Assert.Equal(("running", 0), (running.State(), running.GetProperty("position").GetInt32()));
        var (s2, waiting) = await ApiClient.Generate(client, Short);
        Assert.Equal(HttpStatusCode.Accepted, s2);
        Assert.Equal(("queued", 1), (waiting.State(), waiting.GetProperty("position").GetInt32()));

        var (s3, refused) = await ApiClient.Generate(client, Short);
        Assert.Equal(HttpStatusCode.TooManyRequests, s3);
        Assert.Equal("the generation queue is full (1 requests waiting); try again when one has finished.", refused.Error());

        // Cancelling the waiting request frees its place at once.
        using (var cancel = await client.PostAsync($"/api/jobs/{waiting.Id()}/cancel", null))
            Assert.Equal(HttpStatusCode.OK, cancel.StatusCode);
        Assert.Equal("cancelled", (await ApiClient.WaitFor(client, waiting.Id(), s => s.State() == "cancelled", TimeSpan.FromSeconds(10))).State());
        var (s4, next) = await ApiClient.Generate(client, Short);
        Assert.Equal(HttpStatusCode.Accepted, s4);
        Assert.Equal(1, next.GetProperty("position").GetInt32());

        // Cancelling the running one stops its sampler between two steps; the next request then runs to the end.
        await ApiClient.WaitFor(client, running.Id(), s => s.GetProperty("step").GetInt32() >= 1, TimeSpan.FromMinutes(1));
        using (await client.DeleteAsync($"/api/jobs/{running.Id()}")) { }
        var stopped = (await ApiClient.Events(client, running.Id(), TimeSpan.FromMinutes(1)))[^1];
        Assert.Equal("cancelled", stopped.State());
        Assert.True(stopped.GetProperty("fraction").GetDouble() < 0.5);
        var finished = (await ApiClient.Events(client, next.Id(), TimeSpan.FromMinutes(1)))[^1];
        Assert.Equal("done", finished.State());

        var queue = server.App.Services.GetService(typeof(GenerationQueue)) as GenerationQueue;
        Assert.Equal((0, 0), (queue!.Waiting, queue.Running));
    }
}
