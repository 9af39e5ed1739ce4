using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using LatentDiffusion.Training;

namespace LatentDiffusion.Server.Tests;

/// <summary>No file outside the configured folders is ever served, and broken files (a corrupt model, a half-written
/// run) are reported, never fatal.</summary>
public class FolderSafetyTests : IDisposable
{
    readonly string _dir = TestPaths.NewTempDir("folders");
    readonly string _runs, _models, _secret;

    public FolderSafetyTests()
    {
        _runs = Directory.CreateDirectory(Path.Combine(_dir, "runs")).FullName;
        _models = Directory.CreateDirectory(Path.Combine(_dir, "models")).FullName;
        // A file beside the served folders that must never be readable through the server.
        _secret = Path.Combine(_dir, "secret.png");
        File.WriteAllBytes(_secret, SmallPng());
        string run = Directory.CreateDirectory(Path.Combine(_runs, "run-a")).FullName;
        File.WriteAllText(Path.Combine(run, "metrics.jsonl"), "{\"step\":10,\"loss\":0.5,\"total_steps\":100}\n");
        File.Copy(_secret, Path.Combine(run, "samples_0000010.png"));
        string study = Directory.CreateDirectory(Path.Combine(_runs, "study-a", "grids")).Parent!.FullName;
        File.WriteAllText(Path.Combine(study, "study.json"), "{}");
        File.WriteAllText(Path.Combine(study, "report.md"), "# study\n\n![grid](grids/a.png)\n");
        File.Copy(_secret, Path.Combine(study, "grids", "a.png"));
        File.CreateSymbolicLink(Path.Combine(study, "grids", "link.png"), _secret);
        Directory.CreateSymbolicLink(Path.Combine(study, "outside"), _dir);
    }

    static byte[] SmallPng() => IO.ImageFile.Encode(new IO.ImagePixels(2, 2, 3, new byte[12]), SkiaSharp.SKEncodedImageFormat.Png);

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    [Fact]
    public async Task PathTraversalIsRefusedAndTheFolderFilesAreServed()
    {
        await using var server = await TestServer.InProcess(new ServerOptions { RunFolders = [_runs] });
        var client = server.Client;
        async Task<HttpStatusCode> Status(string url) { using var r = await client.GetAsync(url); return r.StatusCode; }

        Assert.Equal(HttpStatusCode.OK, await Status("/api/study/file?id=0/study-a&path=grids/a.png"));
        Assert.Equal(HttpStatusCode.OK, await Status("/api/run/file?id=0/run-a&file=samples_0000010.png"));
        string secretName = Path.GetFileName(_secret);
        foreach (var url in new[]
        {
            $"/api/study/file?id=0/study-a&path=../../{secretName}",
            $"/api/study/file?id=0/study-a&path=..%2F..%2F{secretName}",
            $"/api/study/file?id=0/study-a&path=grids/../../../{secretName}",
            $"/api/study/file?id=0/study-a&path={Uri.EscapeDataString(_secret)}",
            $"/api/study/file?id=0/study-a&path=..%5C..%5C{secretName}",
            "/api/study/file?id=0/study-a&path=grids/link.png",          // a link to a file outside
            $"/api/study/file?id=0/study-a&path=outside/{secretName}",  // a folder link out of the study
            "/api/study/file?id=0/study-a&path=study.json",             // inside, but not an image
            "/api/study/file?id=0/study-a&path=/etc/passwd",
            $"/api/run/file?id=0/run-a&file=../../{secretName}",
            "/api/run/file?id=0/run-a&file=metrics.jsonl",
            "/api/run?id=0/..",
            "/api/run?id=../..",
            "/api/study?id=0/study-a/outside",
        })
            Assert.True(await Status(url) == HttpStatusCode.NotFound, url);
        using var missing = await client.GetAsync("/api/run");
        Assert.Equal(HttpStatusCode.BadRequest, missing.StatusCode);
        Assert.Contains("'id' is missing", (await missing.Content.ReadFromJsonAsync<JsonElement>()).Error());
    }

    [Fact]
    public async Task CorruptModelAndHalfWrittenRunKeepTheServerUp()
    {
        File.WriteAllBytes(Path.Combine(_models, "corrupt.safetensors"), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        byte[] real = File.ReadAllBytes(Path.Combine(TestPaths.Models, "shapes-class.safetensors"));
        File.WriteAllBytes(Path.Combine(_models, "truncated.safetensors"), real[..(real.Length / 2)]);
        string run = Path.Combine(_runs, "run-a");
        File.AppendAllText(Path.Combine(run, "metrics.jsonl"), "{\"step\":20,\"loss\":0.4,\"total_steps\":100,\"steps_per_sec\":2}\n{\"step\":30,\"lo");
        File.WriteAllBytes(Path.Combine(run, "checkpoint.safetensors"), [0xFF, 0xFF]);
        Directory.CreateDirectory(Path.Combine(_runs, "empty-run"));
        File.WriteAllText(Path.Combine(_runs, "empty-run", "metrics.jsonl"), "");

        await using var server = await TestServer.InProcess(new ServerOptions { ModelFolders = [_models, TestPaths.Models], RunFolders = [_runs] });
        var client = server.Client;

        var models = (await client.GetFromJsonAsync<JsonElement>("/api/models")).EnumerateArray().ToDictionary(m => m.GetProperty("id").GetString()!);
        Assert.Contains("not a valid safetensors file", models["corrupt"].GetProperty("error").GetString());
        Assert.Equal(JsonValueKind.String, models["truncated"].GetProperty("error").ValueKind);
        var (status, body) = await ApiClient.Generate(client, new { model = "corrupt", classes = new[] { 0 } });
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.StartsWith("model 'corrupt' cannot be used: ", body.Error());

        var view = await client.GetFromJsonAsync<JsonElement>("/api/run?id=0/run-a");
        Assert.Equal([10L, 20L], view.GetProperty("steps").EnumerateArray().Select(s => s.GetInt64()));
        Assert.Equal("running", view.GetProperty("state").GetString());
        Assert.Equal(40.0, view.GetProperty("secondsLeft").GetDouble());   // 80 steps at 2 steps/s
        Assert.Empty(view.GetProperty("settings").EnumerateObject());
        var list = await client.GetFromJsonAsync<JsonElement>("/api/runs");
        Assert.Equal(2, list.GetProperty("runs").GetArrayLength());

        // And the healthy model beside the broken ones still generates.
        var (ok, job) = await ApiClient.Generate(client, new { model = "shapes-class", classes = new[] { 2 }, num = 1, steps = 2 });
        Assert.Equal(HttpStatusCode.Accepted, ok);
        Assert.Equal("done", (await ApiClient.Events(client, job.Id(), TimeSpan.FromMinutes(1)))[^1].State());
    }

    [Fact]
    public async Task FinishedFailedAndInterruptedRunsAreToldApart()
    {
        string finished = Directory.CreateDirectory(Path.Combine(_runs, "finished")).FullName;
        File.WriteAllText(Path.Combine(finished, "metrics.jsonl"), "{\"step\":100,\"loss\":0.1,\"total_steps\":100}\n");
        string killed = Directory.CreateDirectory(Path.Combine(_runs, "killed")).FullName;
        File.WriteAllText(Path.Combine(killed, "metrics.jsonl"), "{\"step\":50,\"loss\":0.1,\"total_steps\":100}\n");
        File.SetLastWriteTimeUtc(Path.Combine(killed, "metrics.jsonl"), DateTime.UtcNow.AddHours(-1));

        // Real runs that end on an error and on a cancel write how they ended; the page reads it from the folder.
        string failed = Path.Combine(_runs, "failed"), cancelled = Path.Combine(_runs, "cancelled");
        var diverging = new DiffusionTrainingOptions { Steps = 20, LearningRate = 1e9, GradClip = 0, LogEvery = 1, CheckpointEvery = 5 };
        Assert.Throws<TrainingDivergedException>(() => TinyRuns.Train(failed, diverging));
        using (var cancel = new CancellationTokenSource())
            TinyRuns.Train(cancelled, new DiffusionTrainingOptions { Steps = 50, LogEvery = 1, CheckpointEvery = 5 }, cancel, cancelAfter: 3);
        Assert.Equal(RunStatus.Failed, RunStatus.Read(failed)!.State);
        Assert.Equal((RunStatus.Interrupted, 3L), (RunStatus.Read(cancelled)!.State, RunStatus.Read(cancelled)!.Step));

        await using var server = await TestServer.InProcess(new ServerOptions { RunFolders = [_runs] });
        var runs = (await server.Client.GetFromJsonAsync<JsonElement>("/api/runs")).GetProperty("runs").EnumerateArray()
            .ToDictionary(r => r.GetProperty("id").GetString()!, r => r.GetProperty("state").GetString());
        Assert.Equal(("finished", "interrupted", "running"), (runs["0/finished"], runs["0/killed"], runs["0/run-a"]));
        Assert.Equal(("failed", "interrupted"), (runs["0/failed"], runs["0/cancelled"]));
        var detail = await server.Client.GetFromJsonAsync<JsonElement>("/api/run?id=0/failed");
        Assert.Contains("training stopped", detail.GetProperty("error").GetString());

        // Resuming the cancelled run removes the old status: it is running (here: finished) again.
        TinyRuns.Train(cancelled, new DiffusionTrainingOptions { Steps = 6, LogEvery = 1, CheckpointEvery = 5 });
        Assert.Null(RunStatus.Read(cancelled));
    }
}
