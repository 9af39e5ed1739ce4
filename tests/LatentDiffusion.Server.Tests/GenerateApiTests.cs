using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using LatentDiffusion.Denoisers;
using LatentDiffusion.IO;
using LatentDiffusion.Pipelines;

namespace LatentDiffusion.Server.Tests;

/// <summary>The generate half of the API in process: models, a generation with streamed progress and PNGs that carry
/// their settings, and bad input answered as the command line answers it.</summary>
public class GenerateApiTests
{
    static ServerOptions Shipped => new() { ModelFolders = [TestPaths.Models] };

    [Fact]
    public async Task ModelsListsTheShippedDenoisersWithWhatThePageShows()
    {
        await using var server = await TestServer.InProcess(Shipped);
        var models = await server.Client.GetFromJsonAsync<JsonElement>("/api/models");
        var byId = models.EnumerateArray().ToDictionary(m => m.GetProperty("id").GetString()!);

        Assert.Equal(["fashion-mnist", "shapes-class", "shapes-text"], byId.Keys.Order());   // no autoencoder, no classifier
        Assert.Equal("red circle", byId["shapes-class"].GetProperty("classNames")[0].GetString());
        Assert.Equal("text", byId["shapes-text"].GetProperty("condition").GetString());
        Assert.Contains("triangle", byId["shapes-text"].GetProperty("vocabulary").EnumerateArray().Select(w => w.GetString()));
        var info = DenoiserCheckpoint.PeekInfo(Path.Combine(TestPaths.Models, "shapes-class.safetensors"));
        Assert.Equal(info.SamplingOrDefault.Steps, byId["shapes-class"].GetProperty("recommended").GetProperty("steps").GetInt32());

        var one = await server.Client.GetFromJsonAsync<JsonElement>("/api/models/shapes-text");
        Assert.Equal(17, one.GetProperty("maxTokens").GetInt32());
    }

    [Fact]
    public async Task GenerationStreamsProgressThenServesPngsWithTheirSettings()
    {
        await using var server = await TestServer.InProcess(Shipped);
        var (status, job) = await ApiClient.Generate(server.Client, new { model = "shapes-class", classes = new[] { 0, 4 }, num = 2, steps = 4, seed = 3 });
        Assert.Equal(HttpStatusCode.Accepted, status);

        var events = await ApiClient.Events(server.Client, job.Id(), TimeSpan.FromMinutes(2));
        var last = events[^1];
        Assert.Equal("done", last.State());
        Assert.Contains(events, e => e.State() == "running" && e.GetProperty("step").GetInt32() >= 1);
        Assert.Equal(1.0, last.GetProperty("fraction").GetDouble());
        string command = last.GetProperty("command").GetString()!;
        Assert.Equal("ldm sample --model models/shapes-class.safetensors --classes 0,4 --num 2 --sampler ddim --steps 4 --guidance 1 --seed 3",
            command.Replace(Path.Combine(TestPaths.Models, "shapes-class.safetensors"), "models/shapes-class.safetensors"));

        byte[] grid = await server.Client.GetByteArrayAsync(last.GetProperty("grid").GetString());
        Assert.Equal(command, PngText.Read(grid).Single(e => e.Key == "ldm.command").Value);
        byte[] second = await server.Client.GetByteArrayAsync(last.GetProperty("images")[1].GetString());
        var text = PngText.Read(second).ToDictionary(e => e.Key, e => e.Value);
        Assert.Equal(("4", "red square", "3"), (text["ldm.class"], text["ldm.class_name"], text["ldm.seed"]));
        Assert.Equal(["red circle", "red square"], last.GetProperty("captions").EnumerateArray().Select(c => c.GetString()));

        // The same request through the library gives the same pixels: the server adds nothing of its own.
        using var pipe = DiffusionPipeline.Load(Path.Combine(TestPaths.Models, "shapes-class.safetensors"));
        var resolved = new SampleRequest { ClassIds = [0, 4], Count = 2, Steps = 4, Seed = 3 }.Resolve(pipe.Info);
        using var images = resolved.Generate(pipe);
        Assert.Equal(Pixels(images.Png(1)), Pixels(second));
    }

    [Fact]
    public async Task AStreamOpenedAfterTheJobFinishedStillShowsItsLastStep()
    {
        await using var server = await TestServer.InProcess(Shipped);
        var (_, job) = await ApiClient.Generate(server.Client, new { model = "shapes-class", classes = new[] { 1 }, num = 1, steps = 3, seed = 1 });
        await ApiClient.WaitFor(server.Client, job.Id(), s => s.State() == "done", TimeSpan.FromMinutes(2));

        var events = await ApiClient.Events(server.Client, job.Id(), TimeSpan.FromMinutes(1));
        Assert.Equal(["running", "done"], events.Select(e => e.State()));
        Assert.Equal(3, events[0].GetProperty("step").GetInt32());
        Assert.Equal(1.0, events[0].GetProperty("fraction").GetDouble());
        Assert.Empty(events[0].GetProperty("images").EnumerateArray());
    }

    static byte[] Pixels(byte[] png)
    {
        using var bitmap = SkiaSharp.SKBitmap.Decode(png);
        return bitmap.Bytes;
    }

    public static TheoryData<string, HttpStatusCode, string> BadRequests => new()
    {
        { """{"model":"shapes-class","classes":[44]}""", HttpStatusCode.BadRequest, "--classes: class id 44 is outside this model's classes 0..11; use ids in that range." },
        { """{"model":"shapes-class","prompts":["a red circle"]}""", HttpStatusCode.BadRequest, "this is a class-conditional model; choose classes with --classes instead of --prompt." },
        { """{"model":"shapes-text","classes":[1]}""", HttpStatusCode.BadRequest, "this is a text-conditioned model; describe the images with --prompt \"...\" instead of --classes." },
        { """{"model":"shapes-text","prompts":["a purple circle"]}""", HttpStatusCode.BadRequest, "'purple'" },
        { """{"model":"shapes-class","steps":0}""", HttpStatusCode.BadRequest, "SamplingOptions.Steps" },
        { """{"model":"shapes-class","guidance":-1}""", HttpStatusCode.BadRequest, "SamplingOptions.GuidanceScale" },
        { """{"model":"shapes-class","sampler":"euler"}""", HttpStatusCode.BadRequest, "unknown sampler 'euler'; use ddim, ddpm or dpm++2m." },
        { """{"model":"shapes-class","num":0}""", HttpStatusCode.BadRequest, "--num must be at least 1, got 0." },
        { """{"model":"shapes-class","num":65}""", HttpStatusCode.BadRequest, "--num 65 is over this server's cap of 64 images per request" },
        { """{"model":"shapes-class","steps":251}""", HttpStatusCode.BadRequest, "--steps 251 is over this server's cap of 250 steps per request" },
        { """{"model":"shapes-class","stpes":10}""", HttpStatusCode.BadRequest, "'stpes'" },
        { """{"model":"shapes-class",""", HttpStatusCode.BadRequest, "the request body is not the JSON this call takes" },
        { """{"classes":[1]}""", HttpStatusCode.BadRequest, "\"model\" is missing" },
        { """{"model":"../models/shapes-class"}""", HttpStatusCode.NotFound, "no model '../models/shapes-class' in the models folders" },
    };

    [Theory]
    [MemberData(nameof(BadRequests))]
    public async Task BadInputIsOneLineErrorWithTheCommandLinesMessage(string body, HttpStatusCode expected, string message)
    {
        await using var server = await TestServer.InProcess(Shipped);
        using var response = await server.Client.PostAsync("/api/generate", new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
        var answer = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(expected, response.StatusCode);
        Assert.Contains(message, answer.Error());
        Assert.DoesNotContain('\n', answer.Error());
    }

    [Fact]
    public async Task ImagesPerRequestAreCappedByTheMemoryEveryHeldRequestShares()
    {
        // A queue of a billion requests leaves each about 20 bytes of this machine's memory: not one 32x32 image fits,
        // though the configured cap (64) allows it. The normal server accepts the same request.
        await using var crowded = await TestServer.InProcess(Shipped with { QueueCapacity = 1_000_000_000 });
        using var response = await crowded.Client.PostAsJsonAsync("/api/generate", new { model = "shapes-class", classes = new[] { 1 }, num = 1, steps = 2 });
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("--num 1 is over what this machine's free memory holds per request now (0 images",
            (await response.Content.ReadFromJsonAsync<JsonElement>()).Error());

        await using var server = await TestServer.InProcess(Shipped);
        var (status, _) = await ApiClient.Generate(server.Client, new { model = "shapes-class", classes = new[] { 1 }, num = 64, steps = 2 });
        Assert.Equal(HttpStatusCode.Accepted, status);
    }

    [Fact]
    public async Task UnknownJobAndImageAre404()
    {
        await using var server = await TestServer.InProcess(Shipped);
        foreach (var path in new[] { "/api/jobs/nope", "/api/jobs/nope/grid.png", "/api/models/nope", "/api/models/..%2F..%2Fetc%2Fpasswd" })
        {
            using var response = await server.Client.GetAsync(path);
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        }
    }
}
