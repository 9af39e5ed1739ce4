using System.Reflection;
using System.Text;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests.Fixtures;

/// <summary>
/// Runs every golden fixture of <see cref="FixtureCatalog"/> (the repository's tests/fixtures, plus LDM_FIXTURES or
/// ../shared/fixtures, each distinct folder once) through the runner of its `kind`, driven only by the manifests:
/// a new folder of a known kind is tested with no code change. Pending and unknown kinds and unsupported ops are
/// reported as skipped (one line per kind), never as passed; a known kind without a runner is a failure.
/// </summary>
public sealed class FixtureParityTests(ITestOutputHelper output)
{
    [Fact]
    public void EveryFixtureMatchesTheOfficialOutputs()
    {
        var catalog = FixtureCatalog.Discover();
        var report = new StringBuilder();
        var failures = new List<string>();
        int ran = 0, passed = 0, skipped = 0;
        // (kind, why) → the fixture or case names skipped for that reason, in order.
        var skips = new SortedDictionary<(string Kind, string Why), List<string>>();
        void Skip(string kind, string why, string name, int count)
        {
            skipped += count;
            if (!skips.TryGetValue((kind, why), out var names)) skips[(kind, why)] = names = [];
            names.Add(name);
        }
        void Fail(string line)
        {
            failures.Add(line);
            report.AppendLine("FAIL " + line);
        }

        foreach (var root in catalog.Roots)
        {
            int found = catalog.Folders.Count(f => f.Root == root);
            int same = catalog.Duplicates.Count(d => d.Dropped.Root == root);
            report.AppendLine($"FROM {root.Label} ({root.Path}): {found + same} folders" + (same > 0 ? $", {same} identical to one above (run once)" : ""));
            if (found + same == 0)
                Fail($"{root.Label}: no fixture folder (manifest.json) under '{root.Path}'" +
                     (root.IsRepository ? "" : $"; set {FixtureRoot.EnvironmentVariable} to a fixtures folder or unset it"));
        }

        foreach (var kind in FixtureKinds.Known.Where(k => !FixtureKindRunner.ByKind.ContainsKey(k)))
            Fail($"kind '{kind}': known (FixtureKinds.Known) but no runner is marked [FixtureKind(\"{kind}\")]");
        foreach (var kind in FixtureKindRunner.ByKind.Keys.Where(k => !FixtureKinds.Known.Contains(k)))
            Fail($"kind '{kind}': {FixtureKindRunner.ByKind[kind].Name} runs it but FixtureKinds.Known does not list it" +
                 (FixtureKinds.Pending.ContainsKey(kind) ? " (move it from FixtureKinds.Pending to Known)" : ""));
        foreach (var kind in FixtureKinds.Known.Where(k => !catalog.OfKind(k).Any()))
        {
            if (FixtureKinds.KeptOutsideTheRepository.TryGetValue(kind, out var why)) Skip(kind, why, "no fixture folder found", 1);
            else Fail($"kind '{kind}': no fixture folder of this kind in {FixtureRoot.Repository.Label}");
        }

        torch.set_num_threads(Math.Max(1, Environment.ProcessorCount));
        foreach (var found in catalog.Folders)
        {
            if (FixtureKinds.Pending.TryGetValue(found.Kind, out var pending)) { Skip(found.Kind, pending, found.Name, found.CaseCount); continue; }
            if (!FixtureKinds.Known.Contains(found.Kind)) { Skip(found.Kind, "unknown kind: not in FixtureKinds", found.Name, found.CaseCount); continue; }
            if (!FixtureKindRunner.ByKind.TryGetValue(found.Kind, out var runnerType)) { Fail($"{found.Name}: no runner for its kind '{found.Kind}'"); continue; }
            using var fixture = found.Open();
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
                        Skip(fixture.Kind, $"op '{c.Op}' not supported by {runnerType.Name}", $"{fixture.Name}/{c.Name}", 1);
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
        foreach (var ((kind, why), names) in skips)
            report.AppendLine($"SKIP {kind}: {string.Join(", ", names)} ({why})");
        string summary = $"fixtures: {ran} ran, {passed} passed, {skipped} skipped" + (failures.Count > 0 ? $", {failures.Count} failures" : "");
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
