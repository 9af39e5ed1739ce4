using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace LatentDiffusion.Server;

/// <summary>The page's files, embedded in this assembly (wwwroot/): nothing is read from disk or a CDN to show it.</summary>
public static class StaticPage
{
    static readonly Dictionary<string, string> Types = new()
    {
        [".html"] = "text/html; charset=utf-8", [".js"] = "text/javascript; charset=utf-8", [".css"] = "text/css; charset=utf-8",
    };

    public static void Map(IEndpointRouteBuilder app)
    {
        var assembly = typeof(StaticPage).Assembly;
        var files = assembly.GetManifestResourceNames().Where(n => n.StartsWith("wwwroot/", StringComparison.Ordinal))
            .ToDictionary(n => n["wwwroot/".Length..], n => { using var s = assembly.GetManifestResourceStream(n)!; using var m = new MemoryStream(); s.CopyTo(m); return m.ToArray(); });
        foreach (var (name, bytes) in files)
        {
            string type = Types.GetValueOrDefault(Path.GetExtension(name), "application/octet-stream");
            app.MapGet("/" + name, () => Results.Bytes(bytes, type));
        }
        // The page is one document; its views (#generate, #runs, #study) are chosen by the fragment.
        app.MapGet("/", () => Results.Bytes(files["index.html"], Types[".html"]));
    }
}
