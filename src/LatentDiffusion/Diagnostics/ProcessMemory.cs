namespace LatentDiffusion.Diagnostics;

/// <summary>Resident and available memory of this process from /proc (Linux), including libtorch's native allocations.</summary>
public static class ProcessMemory
{
    /// <summary>Current resident set size in bytes (VmRSS), or -1 where /proc is not available.</summary>
    public static long ResidentBytes() => ReadStatus("VmRSS:");

    /// <summary>Peak resident set size in bytes since the process started (VmHWM), or -1.</summary>
    public static long PeakResidentBytes() => ReadStatus("VmHWM:");

    /// <summary>
    /// Memory this process can still take without swapping: the system's MemAvailable (Linux), capped by what the GC
    /// sees as this process's limit (a container's cgroup limit) minus what is resident now; elsewhere the GC's figure.
    /// Used to refuse work whose result cannot fit before starting it.
    /// </summary>
    public static long AvailableBytes()
    {
        long limit = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        long resident = Math.Max(0, ResidentBytes());
        long free = Math.Max(0, limit - resident);
        long system = ReadKey("/proc/meminfo", "MemAvailable:");
        return system >= 0 ? Math.Min(system, free) : free;
    }

    static long ReadStatus(string key) => ReadKey("/proc/self/status", key);

    static long ReadKey(string file, string key)
    {
        try
        {
            foreach (var line in File.ReadLines(file))
                if (line.StartsWith(key, StringComparison.Ordinal))
                    return long.Parse(line[key.Length..].Trim().Split(' ')[0]) * 1024;
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return -1;
    }
}
