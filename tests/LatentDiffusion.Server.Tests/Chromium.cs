using OpenQA.Selenium;
using OpenQA.Selenium.Chrome;
using OpenQA.Selenium.Support.UI;

namespace LatentDiffusion.Server.Tests;

/// <summary>
/// Debian's chromium, headless, driven by Debian's chromedriver (both installed by scripts/install-chromium.sh). The
/// driver and browser paths are given, so Selenium Manager never looks for (or downloads) a browser.
/// </summary>
public static class Chromium
{
    const string Browser = "/usr/bin/chromium", Driver = "/usr/bin/chromedriver";

    public static ChromeDriver Start()
    {
        foreach (var path in new[] { Browser, Driver })
            if (!File.Exists(path))
                throw new InvalidOperationException($"{path} is missing; run scripts/install-chromium.sh as root (scripts/setup.sh does) to install Debian's chromium and chromium-driver.");
        var service = ChromeDriverService.CreateDefaultService(Path.GetDirectoryName(Driver)!, Path.GetFileName(Driver));
        service.SuppressInitialDiagnosticInformation = true;
        service.HideCommandPromptWindow = true;
        var options = new ChromeOptions { BinaryLocation = Browser };
        // --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        options.AddArguments("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1200,1400",
            "--no-first-run", "--disable-extensions", "--disable-background-networking");
        return new ChromeDriver(service, options, TimeSpan.FromMinutes(2));
    }

    /// <summary>Waits until <paramref name="condition"/> holds (polling the page), or fails the test with <paramref name="what"/>.</summary>
    public static T Until<T>(this IWebDriver driver, Func<IWebDriver, T> condition, string what, int seconds = 60)
    {
        var wait = new WebDriverWait(driver, TimeSpan.FromSeconds(seconds)) { Message = what };
        wait.IgnoreExceptionTypes(typeof(NoSuchElementException), typeof(StaleElementReferenceException));
        return wait.Until(condition);
    }

    /// <summary>Saves the page as PNG in artifacts/serve/ (docs/serve.md shows copies of them).</summary>
    public static string Screenshot(this ChromeDriver driver, string name)
    {
        string path = Path.Combine(TestPaths.Artifacts, name);
        driver.GetScreenshot().SaveAsFile(path);
        return path;
    }
}
