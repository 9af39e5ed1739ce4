using System.Reflection;
using System.Text;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests.Fixtures;

/// <summary>
/// Runs every golden fixture found under LDM_FIXTURES (default ../shared/fixtures) through the runner of its
/// `kind`, driven only by the manifests: a new folder of a known kind is tested with no code change.
/// Unknown kinds and ops are reported as skipped, never as passed.
/// </summary>
public sealed class FixtureParityTests(ITestOutputHelper output)
{
    static readonly Dictionary<string, Type> Runners = typeof(FixtureParityTests).Assembly.GetTypes()
        .Where(t => !t.IsAbstract && typeof(FixtureKindRunner).IsAssignableFrom(t))
        .Select(t => (t, a: t.GetCustomAttribute<FixtureKindAttribute>()))
        .Where(p => p.a != null)
        .ToDictionary(p => p.a!.Kind, p => p.t);

    [Fact]
    public void EveryFixtureMatchesTheOfficialOutputs()
    {
        string root = RepoPaths.Fixtures;
        var folders = Fixture.FindAll(root).ToList();
        Assert.True(folders.Count > 0, $"no fixture folders (manifest.json) under '{root}'; set LDM_FIXTURES to the fixtures folder.");

        var report = new StringBuilder();
        int ran = 0, passed = 0, skipped = 0;
        var failures = new List<string>();
        torch.set_num_threads(Math.Max(1, Environment.ProcessorCount));
        foreach (var dir in folders)
        {
            using var fixture = new Fixture(dir!);
            if (!Runners.TryGetValue(fixture.Kind, out var runnerType))
            {
                skipped += fixture.Cases.Count;
                report.AppendLine($"SKIP {fixture.Name}: unknown kind '{fixture.Kind}' ({fixture.Cases.Count} cases)");
                continue;
            }
            FixtureKindRunner? runner = null;
            try { runner = (FixtureKindRunner)Activator.CreateInstance(runnerType, fixture)!; }
            catch (TargetInvocationException e)
            {
                ran += fixture.Cases.Count;
                failures.Add($"{fixture.Name}: cannot build the model: {e.InnerException?.Message}");
                report.AppendLine($"FAIL {fixture.Name}: cannot build the model: {e.InnerException}");
                continue;
            }
            using (runner)
            {
                foreach (var c in fixture.Cases)
                {
                    if (!runner.Supports(c.Op))
                    {
                        skipped++;
                        report.AppendLine($"SKIP {fixture.Name}/{c.Name}: op '{c.Op}' not supported");
                        continue;
                    }
                    ran++;
                    using var scope = torch.NewDisposeScope();
                    var sw = System.Diagnostics.Stopwatch.StartNew();
                    try
                    {
                        var actual = runner.Run(c);
                        var problems = new List<string>();
                        var details = new List<string>();
                        foreach (var (outName, tensorName) in c.Outputs)
                            Check(fixture, c, outName, tensorName, actual, debug: false, problems, details);
                        foreach (var (outName, tensorName) in c.DebugOutputs)
                            if (actual.ContainsKey("debug:" + outName))
                                Check(fixture, c, outName, tensorName, actual, debug: true, problems, details);
                        if (problems.Count == 0)
                        {
                            passed++;
                            report.AppendLine($"PASS {fixture.Name}/{c.Name} ({sw.ElapsedMilliseconds} ms): {string.Join(", ", details)}");
                        }
                        else
                        {
                            failures.Add($"{fixture.Name}/{c.Name}: {string.Join("; ", problems)}");
                            report.AppendLine($"FAIL {fixture.Name}/{c.Name}: {string.Join("; ", problems)}");
                        }
                    }
                    catch (Exception e)
                    {
                        failures.Add($"{fixture.Name}/{c.Name}: {e.GetType().Name}: {e.Message}");
                        report.AppendLine($"FAIL {fixture.Name}/{c.Name}: {e}");
                    }
                }
            }
        }
        string summary = $"fixtures: {ran} ran, {passed} passed, {skipped} skipped";
        report.AppendLine(summary);
        output.WriteLine(report.ToString());
        Console.WriteLine(summary);
        try
        {
            string reportPath = Path.Combine(RepoPaths.Root, "artifacts", "fixtures-report.txt");
            Directory.CreateDirectory(Path.GetDirectoryName(reportPath)!);
            File.WriteAllText(reportPath, report.ToString());
        }
        catch (IOException) { /* the report file is a convenience */ }
        Assert.True(failures.Count == 0, $"{summary}; failures:\n" + string.Join("\n", failures));
    }

    static void Check(Fixture fixture, FixtureCase c, string outName, string tensorName, Dictionary<string, Tensor> actual,
        bool debug, List<string> problems, List<string> details)
    {
        string key = debug ? "debug:" + outName : outName;
        if (!actual.TryGetValue(key, out var got)) { problems.Add($"{outName}: not produced"); return; }
        var expected = fixture.Data.Read(tensorName);
        var tol = c.ToleranceFor(outName, debug);
        var r = TensorComparison.Compare(got, expected, tol);
        string label = debug ? $"debug {outName}" : outName;
        details.Add($"{label} max|err| {r.MaxAbsError:G3}");
        if (!r.Passed) problems.Add($"{label}: {r.Message}");
    }
}
