namespace LatentDiffusion.Server;

/// <summary>A one-line error about something the client named that does not exist (HTTP 404).</summary>
public sealed class NotFoundException(string message) : LdmException(message);
