using OpenQA.Selenium;
using OpenQA.Selenium.Chrome;

namespace LatentDiffusion.Server.Tests;

/// <summary>
/// The page in a real browser (headless Chromium) against a server on a loopback port: generating a grid from a
/// shipped model, cancelling a long generation, watching a training run that is live, and reading a study. Each saves a
/// screenshot in artifacts/serve/.
/// </summary>
public class BrowserTests : IDisposable
{
    readonly string _dir = TestPaths.NewTempDir("browser");
    readonly string _runs;

    public BrowserTests()
    {
        _runs = Directory.CreateDirectory(Path.Combine(_dir, "runs")).FullName;
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    [Fact]
    public async Task GenerateAGridThenCancelALongGeneration()
    {
        // Commands as `./ldm serve` started in the checkout shows them (the screenshot goes into docs/serve.md).
        await using var server = await TestServer.OnLoopback(new ServerOptions { ModelFolders = [TestPaths.Models], RunFolders = [_runs], CommandFolder = TestPaths.Root });
        using var browser = Chromium.Start();
        browser.Navigate().GoToUrl(new Uri(server.BaseAddress, "/#generate"));

        browser.Until(d => d.FindElements(By.CssSelector("#model option")).Count >= 3, "the model list to load");
        Choose(browser, "model", "shapes-class");
        browser.Until(d => d.FindElements(By.CssSelector("#classes input")).Count == 12, "the class checkboxes of shapes-class");
        browser.FindElement(By.Id("classes-none")).Click();
        foreach (var name in new[] { "red circle", "blue square", "green triangle", "yellow circle" })
            browser.FindElement(By.CssSelector($"#classes input[data-name='{name}']")).Click();
        Set(browser, "steps", "20");
        Set(browser, "num", "8");
        browser.FindElement(By.Id("generate")).Click();

        browser.Until(d => (bool)((IJavaScriptExecutor)d).ExecuteScript("const g = document.getElementById('grid'); return !document.getElementById('result').hidden && g.complete && g.naturalWidth > 0;"),
            "the generated grid to appear", seconds: 120);
        Assert.Equal(8, browser.FindElements(By.CssSelector("#singles img")).Count);
        Assert.StartsWith("ldm sample --model models/shapes-class.safetensors ", browser.FindElement(By.Id("command")).Text);
        Assert.Contains("--classes 0,3,6,9 --num 8 --sampler ddim --steps 20", browser.FindElement(By.Id("command")).Text);
        Assert.Equal("", browser.FindElement(By.Id("error")).Text);
        browser.Screenshot("generate.png");

        // A long generation, cancelled from the page while it runs.
        Set(browser, "steps", "250");
        Set(browser, "num", "64");
        browser.FindElement(By.Id("generate")).Click();
        browser.Until(d => d.FindElement(By.Id("progress-text")).Text.StartsWith("step "), "the progress to show a step");
        browser.FindElement(By.Id("cancel")).Click();
        browser.Until(d => d.FindElement(By.Id("progress-text")).Text == "cancelled", "the generation to be cancelled");
        Assert.True(browser.FindElement(By.Id("generate")).Enabled);

        // A text model: an unknown word is flagged while typing.
        Choose(browser, "model", "shapes-text");
        var prompts = browser.FindElement(By.Id("prompts"));
        prompts.Clear();
        prompts.SendKeys("a large purple circle");
        browser.Until(d => d.FindElements(By.CssSelector("#prompt-check .unknown")).Select(e => e.Text).SequenceEqual(["purple"]), "'purple' to be flagged");
        browser.FindElement(By.Id("generate")).Click();
        browser.Until(d => d.FindElement(By.Id("error")).Text.Contains("'purple'"), "the server's one-line error");
    }

    [Fact]
    public async Task WatchALiveTrainingRunAndReadAStudy()
    {
        CopyFolder(Path.Combine(TestPaths.Root, "tests", "LatentDiffusion.Server.Tests", "fixtures", "tiny-study"), Path.Combine(_runs, "tiny-study"));
        using var training = new LiveTrainingRun(Directory.CreateDirectory(Path.Combine(_runs, "shapes-live")).FullName);
        training.WaitForProgress(30, TimeSpan.FromMinutes(3));
        await using var server = await TestServer.OnLoopback(new ServerOptions { ModelFolders = [TestPaths.Models], RunFolders = [_runs] });
        using var browser = Chromium.Start();
        browser.Navigate().GoToUrl(new Uri(server.BaseAddress, "/#runs/" + Uri.EscapeDataString("0/shapes-live")));

        browser.Until(d => d.FindElements(By.CssSelector("#run-charts svg path[data-series='loss']")).Count == 1, "the loss curve");
        var state = browser.FindElement(By.Id("run-state"));
        Assert.StartsWith("running", state.Text);
        Assert.Contains("left", state.Text);
        Assert.Contains("0/tiny-study/runs/in-context/seed-0", browser.FindElement(By.Id("runs-table")).Text);
        long firstStep = StepShown(state.Text);
        string firstCurve = browser.FindElement(By.CssSelector("#run-charts path[data-series='loss']")).GetAttribute("d")!;
        // The page polls every 5 s: the curve grows while the run trains.
        browser.Until(d => StepShown(d.FindElement(By.Id("run-state")).Text) > firstStep, "the run's step to advance in the page", seconds: 60);
        Assert.NotEqual(firstCurve, browser.FindElement(By.CssSelector("#run-charts path[data-series='loss']")).GetAttribute("d"));
        browser.Until(d => (bool)((IJavaScriptExecutor)d).ExecuteScript("const g = document.getElementById('run-grid'); return g.complete && g.naturalWidth > 0;"), "the sample grid");
        var slider = browser.FindElement(By.Id("grid-slider"));
        Assert.True(int.Parse(slider.GetAttribute("max")!) >= 0);
        Assert.NotEmpty(browser.FindElements(By.CssSelector("#run-settings td")));
        browser.Screenshot("runs.png");

        browser.Navigate().GoToUrl(new Uri(server.BaseAddress, "/#study/" + Uri.EscapeDataString("0/tiny-study")));
        browser.Navigate().Refresh();
        browser.Until(d => d.FindElements(By.CssSelector("#study-report table")).Count >= 1, "the study report's table");
        var report = browser.FindElement(By.Id("study-report"));
        Assert.Contains("in-context", report.FindElement(By.TagName("table")).Text);
        Assert.Contains("adaln-zero", report.FindElement(By.TagName("table")).Text);
        browser.Until(d => (bool)((IJavaScriptExecutor)d).ExecuteScript("return [...document.querySelectorAll('#study-report img')].every(i => i.complete && i.naturalWidth > 0) && document.querySelectorAll('#study-report img').length >= 4;"), "the report's plots and grids");
        Assert.Equal(2, browser.FindElements(By.CssSelector("#study-charts path[data-series]")).Count);
        browser.Screenshot("study.png");
    }

    static long StepShown(string stateText)
    {
        var m = System.Text.RegularExpressions.Regex.Match(stateText, @"step (\d+)");
        return m.Success ? long.Parse(m.Groups[1].Value) : -1;
    }

    /// <summary>Picks an option of a select by value, as a click would (Selenium's SelectElement lives in another package).</summary>
    static void Choose(IWebDriver browser, string id, string value) =>
        ((IJavaScriptExecutor)browser).ExecuteScript("const s = document.getElementById(arguments[0]); s.value = arguments[1]; s.dispatchEvent(new Event('change'));", id, value);

    static void Set(IWebDriver browser, string id, string value)
    {
        var input = browser.FindElement(By.Id(id));
        input.Clear();
        input.SendKeys(value);
    }

    static void CopyFolder(string from, string to)
    {
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            string target = Path.Combine(to, Path.GetRelativePath(from, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
    }
}
