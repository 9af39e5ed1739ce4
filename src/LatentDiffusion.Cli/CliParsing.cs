using System.Globalization;
using LatentDiffusion;
using static TorchSharp.torch;

namespace LatentDiffusion.Cli;

/// <summary>Parsers for option values that need more than System.CommandLine's conversions; errors are user errors.</summary>
public static class CliParsing
{
    /// <summary>
    /// "3", "0,5,7", "0-11" or "all" (null → all), each id in 0..<paramref name="numClasses"/>−1. A range is checked
    /// before it is listed, so "0-2000000000" is refused at once instead of after listing two billion ids.
    /// </summary>
    public static List<int> ClassIds(string? text, int numClasses)
    {
        if (string.IsNullOrWhiteSpace(text) || text.Trim().Equals("all", StringComparison.OrdinalIgnoreCase))
            return Enumerable.Range(0, numClasses).ToList();
        void InRange(long id)
        {
            if (id < 0 || id >= numClasses)
                throw new LdmException($"--classes: class id {id} is outside this model's classes 0..{numClasses - 1}; use ids in that range.");
        }
        var ids = new List<int>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var range = part.Split('-');
            if (range.Length == 2 && long.TryParse(range[0], NumberStyles.None, CultureInfo.InvariantCulture, out long a)
                && long.TryParse(range[1], NumberStyles.None, CultureInfo.InvariantCulture, out long b) && a <= b)
            {
                InRange(a);
                InRange(b);
                ids.AddRange(Enumerable.Range((int)a, (int)(b - a + 1)));
            }
            else if (long.TryParse(part, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long id))
            {
                InRange(id);
                ids.Add((int)id);
            }
            else
                throw new LdmException($"--classes: '{part}' is not a class id; write ids like 3, 0,5,7 or 0-11, or 'all'.");
        }
        if (ids.Count == 0) throw new LdmException("--classes is empty; write ids like 3, 0,5,7 or 0-11, or 'all'.");
        return ids;
    }

    /// <summary>An output folder that may exist, created and checked to be writable; a path that is an existing file is an error.</summary>
    public static string OutputFolder(string path, string option)
    {
        if (string.IsNullOrWhiteSpace(path)) throw new LdmException($"{option} is empty; give a folder path.");
        if (File.Exists(path)) throw new LdmException($"{option} '{path}' is a file; give a folder path.");
        try { Directory.CreateDirectory(path); }
        catch (Exception e) when (IO.WriteFailure.IsWriteError(e))
        {
            throw IO.WriteFailure.For(path, e, $"create the {option} folder");
        }
        // A read-only or full file system is found now, not after the sampling or training that would write there.
        IO.WriteFailure.CheckWritable(path);
        return path;
    }

    public static string ExistingFile(string path, string option)
    {
        if (Directory.Exists(path)) throw new LdmException($"{option} '{path}' is a folder; give the path of a file.");
        if (!File.Exists(path)) throw new LdmException($"{option}: file not found: '{path}'; check the path.");
        return path;
    }
}
