using LatentDiffusion.Denoisers;
using LatentDiffusion.IO;

namespace LatentDiffusion.Server;

/// <summary>One model file of the models folders: its description, or why it cannot be used.</summary>
/// <param name="Id">The name the API knows it by: the file name without extension (unique over all folders).</param>
/// <param name="Path">The file.</param>
/// <param name="Info">Its description, null when the file cannot be read.</param>
/// <param name="Error">Why it cannot be read (a corrupt or unsupported file), else null.</param>
public sealed record ModelEntry(string Id, string Path, DenoiserInfo? Info, string? Error);

/// <summary>
/// The denoisers in the models folders, read afresh on every call (a header read, no weights) so a model copied in
/// while the server runs appears. Autoencoders and classifiers beside them are not offered; a file that cannot be
/// read is listed with its error and never stops the server. Models are looked up by id only, never by a path the
/// client gives, so nothing outside the folders can be named.
/// </summary>
public sealed class ModelCatalog(IReadOnlyList<string> folders)
{
    /// <summary>Every denoiser file, in folder order then by name.</summary>
    public IReadOnlyList<ModelEntry> List()
    {
        var entries = new List<ModelEntry>();
        var ids = new HashSet<string>(StringComparer.Ordinal);
        foreach (var folder in folders)
        {
            if (!Directory.Exists(folder)) continue;
            foreach (var path in Directory.EnumerateFiles(folder, "*.safetensors").Order(StringComparer.Ordinal))
            {
                var entry = Read(path);
                if (entry is null) continue;
                // The same file name in two folders: the second is told apart by a suffix.
                string id = entry.Id;
                for (int n = 2; !ids.Add(id); n++) id = $"{entry.Id}-{n}";
                entries.Add(entry with { Id = id });
            }
        }
        return entries;
    }

    /// <summary>The model of <paramref name="id"/>; an <see cref="LdmException"/> (HTTP 404) when there is none.</summary>
    public ModelEntry Find(string id) =>
        List().FirstOrDefault(e => e.Id == id)
        ?? throw new NotFoundException($"no model '{id}' in the models folders; GET /api/models lists them.");

    /// <summary>A denoiser's entry, null for another kind of ldm file (autoencoder, classifier).</summary>
    static ModelEntry? Read(string path)
    {
        string id = System.IO.Path.GetFileNameWithoutExtension(path);
        try
        {
            string? kind;
            using (var file = SafetensorsFile.Open(path)) kind = file.Metadata.GetValueOrDefault(ModelCheckpoint.ModelKey);
            if (kind is not null && !DenoiserCheckpoint.IsDenoiserKind(kind)) return null;
            return new ModelEntry(id, path, DenoiserCheckpoint.PeekInfo(path), null);
        }
        catch (LdmException e) { return new ModelEntry(id, path, null, e.Message); }
        catch (IOException e) { return new ModelEntry(id, path, null, $"cannot read '{path}': {e.Message}"); }
    }
}
