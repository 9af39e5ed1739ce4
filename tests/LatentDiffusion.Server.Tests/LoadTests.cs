using System.Diagnostics;
using System.Globalization;
using System.Net;
using Xunit.Abstractions;

namespace LatentDiffusion.Server.Tests;

/// <summary>
/// Bounded load on loopback: rounds of 50 concurrent generate requests against the small shipped class model. Every
/// request is answered (accepted and run to the end, or refused with 429), none is lost, and the process's memory
/// after the last round is within a bound of the first's. The figures go to artifacts/serve/load-test.txt (docs/serve.md).
/// </summary>
public class LoadTests(ITestOutputHelper output)
{
    const int Concurrent = 50, Rounds = 5;
    /// <summary>Growth of resident memory allowed from the first round to the last: a leak of one grid per request would pass it within a few rounds.</summary>
    const long AllowedGrowthBytes = 96L << 20;

    [Fact]
    public async Task FiftyConcurrentRequestsAreEachAnsweredAndMemoryStaysFlat()
    {
        var options = new ServerOptions { ModelFolders = [TestPaths.Models] };
        await using var server = await TestServer.OnLoopback(options);
        var client = server.Client;
        var lines = new List<string>
        {
            $"load test: {Rounds} rounds of {Concurrent} concurrent POST /api/generate (shapes-class, 1 image, 2 DDIM steps) on {server.BaseAddress}, "
            + $"queue capacity {options.QueueCapacity}, libtorch threads {TorchSharp.torch.get_num_threads()}, {Environment.ProcessorCount} cores",
        };
        var rss = new List<long>();
        for (int round = 1; round <= Rounds; round++)
        {
            var clock = Stopwatch.StartNew();
            var results = await Task.WhenAll(Enumerable.Range(0, Concurrent).Select(i => OneRequest(client, round * 1000 + i)));
            double seconds = clock.Elapsed.TotalSeconds;
            int done = results.Count(r => r.outcome == "done"), refused = results.Count(r => r.outcome == "429");
            Assert.Equal(Concurrent, done + refused);   // every request answered one of the two ways; no error, none lost
            Assert.True(done >= options.QueueCapacity, $"only {done} requests accepted");
            var latencies = results.Where(r => r.outcome == "done").Select(r => r.seconds).Order().ToList();
            GC.Collect();
            GC.WaitForPendingFinalizers();
            GC.Collect();
            long resident = Process.GetCurrentProcess().WorkingSet64;
            rss.Add(resident);
            lines.Add(string.Create(CultureInfo.InvariantCulture,
                $"round {round}: {done} done, {refused} refused with 429, 0 lost; {seconds:F2} s for the round; accepted request to done: median {latencies[latencies.Count / 2]:F2} s, max {latencies[^1]:F2} s; resident memory after {resident / 1048576.0:F0} MiB"));
        }
        var queue = (GenerationQueue)server.App.Services.GetService(typeof(GenerationQueue))!;
        Assert.Equal((0, 0), (queue.Waiting, queue.Running));
        long growth = rss[^1] - rss[0];
        lines.Add(string.Create(CultureInfo.InvariantCulture, $"memory from round 1 to round {Rounds}: {growth / 1048576.0:+0;-0} MiB (bound {AllowedGrowthBytes >> 20} MiB)"));
        File.WriteAllLines(Path.Combine(TestPaths.Artifacts, "load-test.txt"), lines);
        foreach (var line in lines) output.WriteLine(line);
        Assert.True(growth < AllowedGrowthBytes, string.Join("\n", lines));
    }

    /// <summary>Submits one request and follows it to its end: "done", "429", or what else happened.</summary>
    static async Task<(string outcome, double seconds)> OneRequest(HttpClient client, int seed)
    {
        var clock = Stopwatch.StartNew();
        var (status, body) = await ApiClient.Generate(client, new { model = "shapes-class", classes = new[] { seed % 12 }, num = 1, steps = 2, seed });
        if (status == HttpStatusCode.TooManyRequests) return ("429", clock.Elapsed.TotalSeconds);
        if (status != HttpStatusCode.Accepted) return ($"HTTP {(int)status}: {body}", 0);
        var events = await ApiClient.Events(client, body.Id(), TimeSpan.FromMinutes(2));
        string final = events[^1].State();
        if (final == "done") await client.GetByteArrayAsync(events[^1].GetProperty("grid").GetString());
        return (final, clock.Elapsed.TotalSeconds);
    }
}
