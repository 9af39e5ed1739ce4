namespace LatentDiffusion.Server;

/// <summary>A training run (a folder with <c>metrics.jsonl</c>) or a study (a folder with <c>study.json</c>) under the runs folders.</summary>
/// <param name="Id">The name the API knows it by: the runs folder's index and the path below it (<c>0/shapes-run</c>).</param>
/// <param name="Kind"><c>run</c> or <c>study</c>.</param>
/// <param name="Path">The folder.</param>
public sealed record ServedFolder(string Id, string Kind, string Path);
