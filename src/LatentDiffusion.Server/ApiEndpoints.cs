using System.Text.Json;
using LatentDiffusion.Diffusion;
using LatentDiffusion.Pipelines;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace LatentDiffusion.Server;

/// <summary>The HTTP API the page uses (docs/serve.md): models, generation with progress, runs, studies. JSON in and
/// out; errors are <c>{"error": "..."}</c> with 400, 404 or 429 (<see cref="ApiErrors"/>).</summary>
public static class ApiEndpoints
{
    static readonly JsonSerializerOptions BodyJson = new(JsonSerializerDefaults.Web);

    public static void Map(IEndpointRouteBuilder app, ServerOptions options, ModelCatalog models, RunCatalog runs, GenerationQueue queue)
    {
        app.MapGet("/api/models", () => models.List().Select(ModelDescription.Of));
        app.MapGet("/api/models/{id}", (string id) => ModelDescription.Of(models.Find(id)));

        app.MapPost("/api/generate", async (HttpRequest request) =>
        {
            var body = await JsonSerializer.DeserializeAsync<GenerateBody>(request.Body, BodyJson, request.HttpContext.RequestAborted)
                ?? throw new LdmException("the request body is empty; send a JSON object such as {\"model\": \"shapes-class\", \"classes\": [0]}.");
            var (model, sample) = Check(body, models, options, queue);
            var job = queue.Submit(model, sample, SampleRequest.CommandLine(ShownPath(model.Path, options.CommandFolder ?? Environment.CurrentDirectory), sample));
            return Results.Json(JobStatus.Of(job), statusCode: StatusCodes.Status202Accepted);
        });
        app.MapGet("/api/jobs/{id}", (string id) => JobStatus.Of(queue.Find(id)));
        app.MapPost("/api/jobs/{id}/cancel", (string id) => JobStatus.Of(queue.Cancel(id)));
        app.MapDelete("/api/jobs/{id}", (string id) => JobStatus.Of(queue.Cancel(id)));
        app.MapGet("/api/jobs/{id}/events", (string id, HttpContext context) => ProgressStream.Write(queue.Find(id), context));
        app.MapGet("/api/jobs/{id}/grid.png", (string id) => Png(queue.Find(id), 0, $"ldm-{id[..8]}-grid.png"));
        app.MapGet("/api/jobs/{id}/images/{index:int}.png", (string id, int index) => Png(queue.Find(id), index + 1, $"ldm-{id[..8]}-{index}.png"));

        app.MapGet("/api/runs", () =>
        {
            var now = DateTime.UtcNow;
            var found = runs.List();
            return new
            {
                runs = found.Where(f => f.Kind == "run").Select(f => RunView.Read(f, details: false, now)).ToList(),
                studies = found.Where(f => f.Kind == "study").Select(f => new { id = f.Id, hasReport = File.Exists(Path.Combine(f.Path, Studies.StudyReport.FileName)) }).ToList(),
            };
        });
        app.MapGet("/api/run", (string? id) => RunView.Read(runs.Find(Required(id, "id"), "run"), details: true, DateTime.UtcNow));
        app.MapGet("/api/run/file", (string? id, string? file) =>
        {
            var run = runs.Find(Required(id, "id"), "run");
            Required(file, "file");
            // Only the run's own sample grids, by the names the run view lists.
            if (!RunView.GridsOf(run.Path).Any(g => g.File == file))
                throw new NotFoundException($"no sample grid '{file}' in run '{id}'.");
            return Results.File(SafePath.Resolve(run.Path, file), "image/png");
        });
        app.MapGet("/api/study", (string? id) => StudyView.Read(runs.Find(Required(id, "id"), "study")));
        app.MapGet("/api/study/file", (string? id, string? path) =>
        {
            string full = SafePath.Resolve(runs.Find(Required(id, "id"), "study").Path, Required(path, "path"));
            return Results.File(full, full.EndsWith(".svg", StringComparison.OrdinalIgnoreCase) ? "image/svg+xml" : "image/png");
        });
    }

    /// <summary>A query parameter's value; a one-line 400 when it is missing (the framework's own answer has no message).</summary>
    static string Required(string? value, string name) =>
        string.IsNullOrEmpty(value) ? throw new LdmException($"the query parameter '{name}' is missing; GET /api/runs lists the ids.") : value;

    /// <summary>The same checks as <c>ldm sample</c> (<see cref="SampleRequest.Resolve"/>), then this server's caps: the
    /// configured ones, and the images the machine's memory can hold per request (<see cref="GenerationQueue.ImagesThatFit"/>).</summary>
    internal static (ModelEntry model, ResolvedSample sample) Check(GenerateBody body, ModelCatalog models, ServerOptions options, GenerationQueue queue)
    {
        if (string.IsNullOrWhiteSpace(body.Model)) throw new LdmException("\"model\" is missing; name a model from GET /api/models.");
        var model = models.Find(body.Model);
        var info = model.Info ?? throw new LdmException($"model '{model.Id}' cannot be used: {model.Error}");
        if (!info.IsPixelSpace && info.AutoencoderBeside(model.Path) is null)
            throw new LdmException($"model '{model.Id}' is a latent model whose autoencoder is not beside it; put the autoencoder it names in the same folder.");
        var request = new SampleRequest
        {
            ClassIds = body.Classes,
            Prompts = body.Prompts,
            Count = body.Num,
            Sampler = body.Sampler is null ? null : Samplers.Parse(body.Sampler),
            Steps = body.Steps,
            GuidanceScale = body.Guidance,
            Eta = body.Eta,
            Seed = body.Seed,
            BatchSize = options.BatchSize,
        };
        var sample = request.Resolve(info);
        if (sample.Count > options.MaxImagesPerRequest)
            throw new LdmException($"--num {sample.Count} is over this server's cap of {options.MaxImagesPerRequest} images per request; ask for fewer (or start ldm serve with a larger --max-images).");
        if (sample.Options.Steps > options.MaxStepsPerRequest)
            throw new LdmException($"--steps {sample.Options.Steps} is over this server's cap of {options.MaxStepsPerRequest} steps per request; ask for fewer (or start ldm serve with a larger --max-steps).");
        long fit = queue.ImagesThatFit(model);
        if (sample.Count > fit)
            throw new LdmException($"--num {sample.Count} is over what this machine's free memory holds per request now ({fit} images, with room kept for the {options.QueueCapacity} requests the queue may hold); ask for fewer (or start ldm serve with a smaller --queue).");
        return (model, sample);
    }

    /// <summary>The model path as the command shows it: relative to <paramref name="folder"/> (where the command is meant to run) when inside it.</summary>
    static string ShownPath(string path, string folder)
    {
        string relative = Path.GetRelativePath(folder, path);
        return relative.StartsWith("..", StringComparison.Ordinal) || Path.IsPathRooted(relative) ? Path.GetFullPath(path) : relative;
    }

    static IResult Png(GenerationJob job, int index, string downloadName)
    {
        if (job.State != GenerationState.Done)
            throw new NotFoundException($"generation '{job.Id}' is {job.State.ToString().ToLowerInvariant()}, it has no images yet.");
        if (index < 0 || index >= job.Pngs.Count)
            throw new NotFoundException($"generation '{job.Id}' has {job.Pngs.Count - 1} images, numbered from 0.");
        return Results.File(job.Pngs[index], "image/png", downloadName);
    }
}
