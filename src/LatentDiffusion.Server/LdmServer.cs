using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace LatentDiffusion.Server;

/// <summary>
/// The <c>ldm serve</c> web application: the page and its API over the models and runs folders, listening on one
/// address and port (loopback by default) and nothing else.
/// </summary>
public static class LdmServer
{
    /// <summary>Builds the application; <paramref name="configure"/> may change the host before it is built (tests use an in-memory server).</summary>
    public static WebApplication Build(ServerOptions options, Action<WebApplicationBuilder>? configure = null)
    {
        options.Validate();
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning);
        // One listener: the configured address and port, plain HTTP (a local page; no certificate to manage).
        builder.WebHost.ConfigureKestrel(k => k.Listen(Address(options.Host), options.Port));
        var pipelines = new PipelineCache(options.Device);
        var queue = new GenerationQueue(options, pipelines);
        builder.Services.AddSingleton(pipelines);
        builder.Services.AddSingleton(queue);
        configure?.Invoke(builder);

        var app = builder.Build();
        // Stop the samplers (between two steps) before the pipelines they use are freed.
        app.Lifetime.ApplicationStopping.Register(() => { queue.Dispose(); pipelines.Dispose(); });
        app.Use(ApiErrors.Handle);
        ApiEndpoints.Map(app, options, new ModelCatalog(options.ModelFolders), new RunCatalog(options.RunFolders), queue);
        StaticPage.Map(app);
        return app;
    }

    /// <summary>The address of <c>--host</c>: an IP address, or <c>localhost</c> for the IPv4 loopback.</summary>
    public static IPAddress Address(string host)
    {
        if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase)) return IPAddress.Loopback;
        if (IPAddress.TryParse(host.Trim('[', ']'), out var address)) return address;
        throw new LdmException($"--host '{host}' is not an IP address; write 127.0.0.1 (this machine only), ::1, or 0.0.0.0 (every interface).");
    }
}
