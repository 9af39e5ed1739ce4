namespace LatentDiffusion.Server;

/// <summary>The generation queue holds as many waiting requests as it may (HTTP 429: try again later).</summary>
public sealed class QueueFullException(string message) : LdmException(message);
