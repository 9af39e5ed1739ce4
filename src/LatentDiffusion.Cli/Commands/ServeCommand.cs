using System.CommandLine;
using LatentDiffusion.Cli.Grammar;
using LatentDiffusion.Server;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace LatentDiffusion.Cli.Commands;

/// <summary>`ldm serve`: the local web page to generate images, watch training runs and read studies (docs/serve.md).</summary>
public static class ServeCommand
{
    public static Command Create()
    {
        var models = new Option<string[]>("--models") { Description = "A folder of models to offer (repeat for several; default: ./models when it exists)." };
        var runs = new Option<string[]>("--runs") { Description = "A folder of training runs and studies to show (repeat for several; default: ./runs when it exists)." };
        var host = new Option<string>("--host") { Description = "Address to listen on: 127.0.0.1 (this machine only), ::1, or 0.0.0.0 (every interface: anyone who reaches the machine can use it).", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "Port to listen on (0: any free port).", DefaultValueFactory = _ => 5000 };
        var maxImages = new Option<int>("--max-images") { Description = "Images one request may ask for.", DefaultValueFactory = _ => new ServerOptions().MaxImagesPerRequest };
        var maxSteps = new Option<int>("--max-steps") { Description = "Sampling steps one request may ask for.", DefaultValueFactory = _ => new ServerOptions().MaxStepsPerRequest };
        var queue = new Option<int>("--queue") { Description = "Requests that may wait for a model over all models; one more is refused with HTTP 429.", DefaultValueFactory = _ => new ServerOptions().QueueCapacity };
        var runtime = CommonOptions.Runtime();
        var command = new Command("serve", "A local web page: generate images from the models folders with live progress, watch training runs and read study reports.")
        {
            models, runs, host, port, maxImages, maxSteps, queue,
        };
        foreach (var o in runtime.All) command.Options.Add(o);
        command.SetAction(parse =>
        {
            var device = runtime.Apply(parse);
            var options = new ServerOptions
            {
                ModelFolders = Folders(parse.GetValue(models), "models"),
                RunFolders = Folders(parse.GetValue(runs), "runs"),
                Host = parse.GetValue(host)!,
                Port = parse.GetValue(port),
                MaxImagesPerRequest = parse.GetValue(maxImages),
                MaxStepsPerRequest = parse.GetValue(maxSteps),
                QueueCapacity = parse.GetValue(queue),
                Device = device,
            };
            var app = LdmServer.Build(options);
            app.Lifetime.ApplicationStarted.Register(() =>
            {
                var urls = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
                Console.WriteLine($"ldm serve: {string.Join(", ", urls)}  (models: {List(options.ModelFolders)}; runs: {List(options.RunFolders)}); Ctrl+C stops.");
            });
            try { app.Run(); }
            catch (IOException e) when (e.InnerException is System.Net.Sockets.SocketException || e.Message.Contains("address already in use", StringComparison.OrdinalIgnoreCase))
            {
                throw new LdmException($"cannot listen on {options.Host}:{options.Port}: {e.Message.Split('\n')[0]}; choose another --port.");
            }
            return 0;
        });
        return command;
    }

    static string List(IReadOnlyList<string> folders) => folders.Count == 0 ? "none" : string.Join(", ", folders);

    /// <summary>The folders given, or the default one when none was given and it exists.</summary>
    static IReadOnlyList<string> Folders(string[]? given, string fallback) =>
        given is { Length: > 0 } ? given : Directory.Exists(fallback) ? [fallback] : [];
}
