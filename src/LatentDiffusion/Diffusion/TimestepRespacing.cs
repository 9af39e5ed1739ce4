using System.Globalization;

namespace LatentDiffusion.Diffusion;

/// <summary>
/// Which timesteps of the original process a respaced (shorter) process keeps, with the semantics of DiT's
/// <c>space_timesteps</c>: <c>""</c> keeps all; <c>"25"</c> keeps 25 evenly spaced steps including the first and last;
/// <c>"10,15,20"</c> splits the process into equal sections and takes that many evenly spaced steps from each;
/// <c>"ddim25"</c> uses the fixed integer stride of the DDIM paper (0, 40, ..., 960 for 1000 steps).
/// </summary>
internal static class TimestepRespacing
{
    /// <summary>The kept original timesteps, ascending.</summary>
    public static long[] KeptTimesteps(string? spec, int numTimesteps)
    {
        spec = (spec ?? "").Trim();
        if (spec.Length == 0) return Enumerable.Range(0, numTimesteps).Select(i => (long)i).ToArray();

        if (spec.StartsWith("ddim", StringComparison.OrdinalIgnoreCase))
        {
            int desired = ParseCount(spec[4..], spec);
            // The smallest integer stride whose range(0, T, stride) has exactly the requested length.
            for (int stride = 1; stride < numTimesteps; stride++)
                if ((numTimesteps + stride - 1) / stride == desired)
                    return Enumerable.Range(0, desired).Select(i => (long)i * stride).ToArray();
            if (desired == numTimesteps) // stride 1 is excluded by the loop above only when T == 1
                return Enumerable.Range(0, numTimesteps).Select(i => (long)i).ToArray();
            throw new LdmException($"timestep respacing '{spec}': {numTimesteps} steps cannot be strided into exactly {desired} with an integer stride; pick another DDIM step count (e.g. 'ddim25', 'ddim50') or use '{desired}' for even spacing.");
        }

        var sections = spec.Split(',').Select(s => ParseCount(s, spec)).ToArray();
        int sizePer = numTimesteps / sections.Length, extra = numTimesteps % sections.Length;
        var kept = new SortedSet<long>();
        int start = 0;
        for (int i = 0; i < sections.Length; i++)
        {
            int size = sizePer + (i < extra ? 1 : 0);
            int count = sections[i];
            if (size < count)
                throw new LdmException($"timestep respacing '{spec}': a section of {size} steps cannot be divided into {count}; use at most {size} steps per section (the process has {numTimesteps} steps).");
            double stride = count <= 1 ? 1 : (size - 1) / (double)(count - 1);
            double cur = 0;
            for (int k = 0; k < count; k++)
            {
                // Python's round() rounds halves to even; Math.Round does the same by default.
                kept.Add(start + (long)Math.Round(cur));
                cur += stride;
            }
            start += size;
        }
        return kept.ToArray();
    }

    static int ParseCount(string text, string spec)
    {
        if (!int.TryParse(text.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int n) || n < 1)
            throw new LdmException($"bad timestep respacing '{spec}': '{text}' is not a positive step count; use '' (all steps), a count like '25', a comma list like '10,15,20', or 'ddim25'.");
        return n;
    }
}
