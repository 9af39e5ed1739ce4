namespace LatentDiffusion.Pipelines;

/// <summary>Where a <see cref="DiffusionPipeline"/> call is: after reverse step <see cref="Step"/> of the batch that
/// starts at image <see cref="ImagesDone"/>.</summary>
/// <param name="ImagesDone">Images finished before the current batch.</param>
/// <param name="TotalImages">Images asked for in the call.</param>
/// <param name="BatchImages">Images in the current batch.</param>
/// <param name="Step">Reverse steps done in the current batch (1 … <paramref name="StepsPerBatch"/>).</param>
/// <param name="StepsPerBatch">Reverse steps each batch takes.</param>
public sealed record GenerationProgress(int ImagesDone, int TotalImages, int BatchImages, int Step, int StepsPerBatch)
{
    /// <summary>The part of the whole call done, in [0, 1].</summary>
    public double Fraction => TotalImages == 0 ? 1.0 : (ImagesDone + BatchImages * (double)Step / StepsPerBatch) / TotalImages;
}
