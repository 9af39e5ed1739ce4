namespace LatentDiffusion.Server;

/// <summary>Where a generation request is in its life.</summary>
public enum GenerationState { Queued, Running, Done, Failed, Cancelled }
