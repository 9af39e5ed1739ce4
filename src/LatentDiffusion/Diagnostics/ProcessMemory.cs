namespace LatentDiffusion.Diagnostics;

/// <summary>Resident memory of this process from /proc (Linux), including libtorch's native allocations.</summary>
public static class ProcessMemory
{
    /// <summary>Current resident set size in bytes (VmRSS), or -1 where /proc is not available.</summary>
    public static long ResidentBytes() => ReadStatus("VmRSS:");

    /// <summary>Peak resident set size in bytes since the process started (VmHWM), or -1.</summary>
    public static long PeakResidentBytes() => ReadStatus("VmHWM:");

    static long ReadStatus(string key)
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
                if (line.StartsWith(key, StringComparison.Ordinal))
                    return long.Parse(line[key.Length..].Trim().Split(' ')[0]) * 1024;
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return -1;
    }
}
