using System.Text.Json.Nodes;
using LatentDiffusion.Denoisers;
using LatentDiffusion.Diffusion;
using LatentDiffusion.Studies;
using LatentDiffusion.Training;
using Xunit;

namespace LatentDiffusion.Tests;

/// <summary>`ldm study` and <see cref="Study"/>: a tiny two-backbone study end to end, its resume and growth, its refusals, and the report's ranking rule.</summary>
[Collection(ConsoleCollection.Name)]
public sealed class StudyTests : IDisposable
{
    readonly List<string> _dirs = [];

    public void Dispose()
    {
        foreach (var d in _dirs) try { Directory.Delete(d, true); } catch (IOException) { }
    }

    string NewDir()
    {
        string d = RepoPaths.NewTempDir("study");
        _dirs.Add(d);
        return d;
    }

    /// <summary>A study file: a Transformer and a UNet on 64 pixel-space shapes, 4 steps, evaluated at 2 and 4 by the shapes checker.</summary>
    static JsonObject Spec(double lr = 1e-3, bool withThird = false)
    {
        var configs = new JsonObject
        {
            ["transformer"] = new JsonObject { ["preset"] = "S/2", ["hidden-size"] = 32, ["depth"] = 2, ["num-heads"] = 2, ["patch-size"] = 4 },
            ["unet"] = new JsonObject { ["backbone"] = "unet", ["model-channels"] = 32, ["channel-mult"] = "1,2", ["num-res-blocks"] = 1, ["attention-resolutions"] = "2" },
        };
        if (withThird) configs["adaln"] = new JsonObject { ["preset"] = "S/2", ["hidden-size"] = 32, ["depth"] = 1, ["num-heads"] = 2, ["patch-size"] = 4, ["block"] = "adaln-zero" };
        return new JsonObject
        {
            ["description"] = "tiny study",
            ["data"] = "shapes:count=64",
            ["model"] = new JsonObject { ["no-learn-sigma"] = true, ["prediction"] = "v" },
            ["train"] = new JsonObject { ["steps"] = 4, ["batch-size"] = 8, ["lr"] = lr, ["ema-decay"] = 0.9, ["log-every"] = 1, ["checkpoint-every"] = 2 },
            ["seeds"] = new JsonArray(0),
            ["eval-every"] = 2,
            ["evaluate"] = new JsonObject { ["checker"] = "shapes", ["samples"] = 1, ["steps"] = 2, ["guidance"] = 1.0, ["grid"] = 4 },
            ["configs"] = configs,
        };
    }

    static string Write(string dir, JsonObject spec, string name = "study.json")
    {
        string path = Path.Combine(dir, name);
        File.WriteAllText(path, spec.ToJsonString());
        return path;
    }

    [Fact]
    public void TinyStudyTrainsBothBackbonesWritesTheReportResumesAndGrows()
    {
        string dir = NewDir(), outDir = Path.Combine(dir, "out");
        var run = CliTestHost.Run("study", Write(dir, Spec()), "--out", outDir);
        Assert.True(run.ExitCode == 0, run.ToString());
        string results = Path.Combine(outDir, StudyResults.FileName);
        var lines = File.ReadAllLines(results);
        Assert.Equal(4, lines.Length);   // 2 configurations × evaluations at steps 2 and 4
        foreach (var (config, step) in new[] { ("transformer", 2), ("unet", 2), ("transformer", 4), ("unet", 4) })
            Assert.Contains(lines, l => l.Contains($"\"config\":\"{config}\"") && l.Contains($"\"step\":{step},"));
        foreach (var name in new[] { "transformer", "unet" })
        {
            Assert.True(File.Exists(Path.Combine(outDir, "runs", name, "seed-0", DiffusionTrainer.ModelFile)), name);
            Assert.True(File.Exists(Path.Combine(outDir, Study.GridsFolder, name + ".png")), name);
        }
        string report = File.ReadAllText(Path.Combine(outDir, StudyReport.FileName));
        Assert.Contains("| transformer |", report);
        Assert.Contains("| unet |", report);
        Assert.Contains("Ranking by checker accuracy", report);
        Assert.Contains("metric-vs-flops.png", report);
        Assert.True(new FileInfo(Path.Combine(outDir, "metric-vs-steps.png")).Length > 1000);

        // Run again: everything is done, nothing is trained or evaluated again.
        var again = CliTestHost.Run("study", Write(dir, Spec()), "--out", outDir);
        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.Contains("4 of 4 evaluations done", again.Stdout);
        Assert.Equal(lines, File.ReadAllLines(results));

        // Another learning rate is another study.
        var changed = CliTestHost.Run("study", Write(dir, Spec(lr: 2e-3)), "--out", outDir);
        Assert.Equal(1, changed.ExitCode);
        Assert.Contains("planned with other settings", changed.Stderr);

        // Seeds may be added after the saved ones, not replace them.
        var otherSeed = CliTestHost.Run("study", Write(dir, Spec()), "--out", outDir, "--seeds", "1");
        Assert.Equal(1, otherSeed.ExitCode);
        Assert.Contains("(seeds)", otherSeed.Stderr);

        // A configuration added at the end trains alone; the others' results stay as they were.
        var grown = CliTestHost.Run("study", Write(dir, Spec(withThird: true)), "--out", outDir);
        Assert.True(grown.ExitCode == 0, grown.ToString());
        var after = File.ReadAllLines(results);
        Assert.Equal(6, after.Length);
        Assert.Equal(lines, after.Take(4));
        Assert.Contains("| adaln |", File.ReadAllText(Path.Combine(outDir, StudyReport.FileName)));
    }

    [Fact]
    public void StudyFileMistakesAreOneLineErrors()
    {
        string dir = NewDir();
        void Refused(JsonObject spec, string expected)
        {
            var r = CliTestHost.Run("study", Write(dir, spec), "--out", Path.Combine(dir, "out"), "--plan");
            Assert.True(r.ExitCode == 1, r.ToString());
            Assert.Contains(expected, r.Stderr);
            Assert.Single(r.Stderr.Trim().Split('\n'));
        }
        var lrInConfig = Spec(); ((JsonObject)lrInConfig["configs"]!["unet"]!)["lr"] = 0.1;
        Refused(lrInConfig, "which every configuration of a study shares");
        var unknown = Spec(); unknown["optimiser"] = "sgd";
        Refused(unknown, "\"optimiser\" is not a study setting");
        var noConfigs = Spec(); noConfigs.Remove("configs");
        Refused(noConfigs, "has no \"configs\"");
        var badBudget = Spec(); badBudget["budget"] = "hours";
        Refused(badBudget, "\"budget\" 'hours' is unknown");
        var badModel = Spec(); ((JsonObject)badModel["configs"]!["transformer"]!)["block"] = "mamba";
        Refused(badModel, "--block 'mamba' is unknown");
        var badName = Spec(); ((JsonObject)badName["configs"]!).Add("../up", new JsonObject { ["preset"] = "S/2" });
        Refused(badName, "not usable as a folder name");
        var r = CliTestHost.Run("study", Path.Combine(dir, "missing.json"), "--out", Path.Combine(dir, "out"));
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("does not exist", r.Stderr);
    }

    [Fact]
    public void ConfigurationsForDifferentDataAreRefused()
    {
        var a = new StudyConfiguration("a", TinyModels.Info(TinyModels.Config(size: 8)));
        var b = new StudyConfiguration("b", TinyModels.Info(TinyModels.Config(size: 16)));
        var options = new StudyOptions { Training = new DiffusionTrainingOptions { Steps = 2, BatchSize = 2 } };
        using var data = Data.ShapesDataset.Generate(4, 1, text: false);
        var e = Assert.Throws<LdmException>(() => new Study(null, [a, b], new PixelTrainingData(data), options, new ShapesCheckerEvaluator(1, false)));
        Assert.Contains("differ in input size", e.Message);
        e = Assert.Throws<LdmException>(() => new Study(null, [a, a], new PixelTrainingData(data), options, new ShapesCheckerEvaluator(1, false)));
        Assert.Contains("two configurations named 'a'", e.Message);
    }

    /// <summary>The report calls an order outside the seed spread only when every seed agrees.</summary>
    [Fact]
    public void RankingSaysWhetherSeedRangesOverlap()
    {
        var fid = new StudyMetric("fid", "FID", LowerIsBetter: true);
        StudySummary Row(string name, params double[] values)
        {
            var plan = new StudyPlan(new StudyConfiguration(name, TinyModels.Info(TinyModels.Config())), new ModelCost(1, 1), 10, [10]);
            return new StudySummary(plan, values.Select((_, i) => (long)i).ToList(), new Dictionary<string, Spread> { ["fid"] = Spread.Of(values) }, 0.1, 1);
        }
        var apart = StudyReport.Ranking([Row("worse", 12, 13), Row("better", 10, 11)], fid);
        Assert.StartsWith("Ranking by FID: better > worse.", apart);
        var overlapping = StudyReport.Ranking([Row("worse", 10.5, 13), Row("better", 10, 11)], fid);
        Assert.StartsWith("Ranking by FID: better ≈ worse.", overlapping);
        var oneSeed = StudyReport.Ranking([Row("worse", 13), Row("better", 10)], fid);
        Assert.StartsWith("Ranking by FID: better ≈ worse.", oneSeed);
        Assert.Contains("probability 0.33", apart);   // 2 seeds each: 2·(2!)²/4! = 1/3
        Assert.Equal(0.1, StudyReport.ChanceApart(3), 12);   // 2·36/720
        Assert.Equal(2.0 / 70, StudyReport.ChanceApart(4), 12);
        var spread = Spread.Of([1.0, 3.0]);
        Assert.Equal(2.0, spread.Mean);
        Assert.Equal(Math.Sqrt(2), spread.StdDev, 12);
    }

    /// <summary>Under equal FLOPs a model half as costly trains twice the steps and is evaluated at the same fractions of its budget.</summary>
    [Fact]
    public void EqualFlopsBudgetsScaleStepsInverselyToTheForwardCost()
    {
        var small = new StudyConfiguration("small", TinyModels.Info(TinyModels.Config(size: 16) with { Depth = 1 }));
        var large = new StudyConfiguration("large", TinyModels.Info(TinyModels.Config(size: 16) with { Depth = 2 }));
        var options = new StudyOptions { Training = new DiffusionTrainingOptions { Steps = 100, BatchSize = 4 }, EvaluateEvery = 50, Budget = StudyBudget.EqualFlops };
        var plans = StudyPlan.For([large, small], options);
        double ratio = plans[0].Cost.ForwardFlops / plans[1].Cost.ForwardFlops;
        Assert.True(ratio > 1.3, $"depth 2 should cost clearly more than depth 1, ratio {ratio}");
        Assert.Equal(100, plans[0].Steps);
        Assert.Equal((long)Math.Round(100 * ratio), plans[1].Steps);
        Assert.Equal([50L, 100L], plans[0].EvaluationSteps);
        Assert.Equal([(long)Math.Round(plans[1].Steps / 2.0), plans[1].Steps], plans[1].EvaluationSteps);
        Assert.Equal(plans[0].TrainingFlopsAt(100, 4), plans[1].TrainingFlopsAt(plans[1].Steps, 4), 0.01 * plans[0].TrainingFlopsAt(100, 4));
        var equalSteps = StudyPlan.For([large, small], options with { Budget = StudyBudget.EqualSteps, EvaluateEvery = 40 });
        Assert.All(equalSteps, p => Assert.Equal([40L, 80L, 100L], p.EvaluationSteps));
    }
}
