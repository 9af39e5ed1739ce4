using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;

namespace LatentDiffusion.Server.Tests;

/// <summary>
/// The ldm serve application for a test: in process without a socket (<see cref="InProcess"/>, the TestServer of
/// Microsoft.AspNetCore.Mvc.Testing) for the API tests, or on a loopback port (<see cref="OnLoopback"/>) for the
/// browser and the load test. The models run on one libtorch thread, as a test must share the machine.
/// </summary>
public sealed class TestServer : IAsyncDisposable
{
    static TestServer() => TorchSharp.torch.set_num_threads(1);

    public WebApplication App { get; }
    public HttpClient Client { get; }
    /// <summary>The base address (http://127.0.0.1:PORT for a loopback server).</summary>
    public Uri BaseAddress => Client.BaseAddress!;

    TestServer(WebApplication app, HttpClient client) { App = app; Client = client; }

    public static async Task<TestServer> InProcess(ServerOptions options)
    {
        var app = LdmServer.Build(options, b => b.WebHost.UseTestServer());
        await app.StartAsync();
        return new TestServer(app, app.GetTestClient());
    }

    public static async Task<TestServer> OnLoopback(ServerOptions options)
    {
        var app = LdmServer.Build(options with { Host = "127.0.0.1", Port = 0 });
        await app.StartAsync();
        string address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        return new TestServer(app, new HttpClient { BaseAddress = new Uri(address), Timeout = TimeSpan.FromMinutes(2) });
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await App.StopAsync();
        await App.DisposeAsync();
    }
}
