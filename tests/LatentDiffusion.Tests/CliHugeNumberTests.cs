using LatentDiffusion.Pipelines;

namespace LatentDiffusion.Tests;

/// <summary>
/// Numbers a user can make as large as they like (--num, a --classes range, the lines of --prompts-file) are checked
/// against what the machine can hold before any work, without first allocating what they ask for (issue 12). Each run
/// must stay under a small allocation budget: the old code listed 2·10⁹ class ids (8 GB) or read /dev/zero whole
/// before failing.
/// </summary>
[Collection(ConsoleCollection.Name)]
public sealed class CliHugeNumberTests : IDisposable
{
    const long Budget = 200L << 20;
    readonly string _dir = RepoPaths.NewTempDir("cli-huge");

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    /// <summary>Runs ldm on this thread (as CliTestHost does) and checks it is refused without allocating more than <see cref="Budget"/>.</summary>
    string RefusedCheaply(params string[] args)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        var r = CliTestHost.Run(args);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        string line = CliExpect.UserError(r);
        Assert.True(allocated < Budget, $"allocated {allocated >> 20} MB before refusing `ldm {string.Join(' ', args)}`\n{r}");
        Assert.Empty(Directory.Exists(Out) ? Directory.EnumerateFiles(Out) : []);
        return line;
    }

    string Out => Path.Combine(_dir, "out");

    string[] Sample(params string[] more) => ["sample", "--model", TinyModels.SaveCheckpoint(_dir), "--out", Out, "--steps", "1", .. more];

    [Fact]
    public void NumBeyondMemoryIsRefusedBeforeSampling()
    {
        string line = RefusedCheaply(Sample("--num", "2147483647"));
        Assert.Contains("--num must be at most", line);
        Assert.Contains("GB is available), got 2147483647", line);
    }

    [Theory]
    [InlineData("0-2147483647", "class id 2147483647 is outside")]
    [InlineData("0-2000000000", "class id 2000000000 is outside")]
    [InlineData("3,0-99999999999", "class id 99999999999 is outside")]
    [InlineData("0-99999999999999999999", "is not a class id")]
    public void AHugeClassRangeIsRefusedBeforeItIsListed(string classes, string expected) =>
        Assert.Contains(expected, RefusedCheaply(Sample("--classes", classes)));

    [Fact]
    public void PromptsFromDevZeroAreRefusedAfterOneLine() =>
        Assert.Contains("line 1 is longer than 1000 characters", RefusedCheaply(Sample("--prompts-file", "/dev/zero")));

    [Fact]
    public void APromptsFileWithTooManyLinesIsRefused()
    {
        string file = Path.Combine(_dir, "many.txt");
        File.WriteAllLines(file, Enumerable.Repeat("a red circle", Cli.PromptsFile.MaxPrompts + 1));
        Assert.Contains($"holds more than {Cli.PromptsFile.MaxPrompts} prompts", RefusedCheaply(Sample("--prompts-file", file)));
    }

    [Fact]
    public void APromptsFileOfBlankLinesBeyondTheSizeCapIsRefused()
    {
        string file = Path.Combine(_dir, "blank.txt");
        File.WriteAllBytes(file, Enumerable.Repeat((byte)'\n', Cli.PromptsFile.MaxChars + 1).ToArray());
        Assert.Contains("is longer than 16 MB", CliExpect.UserError(CliTestHost.Run(Sample("--prompts-file", file))));
    }

    [Fact]
    public void APromptsFileReadsCaptionsLineByLine()
    {
        string file = Path.Combine(_dir, "ok.txt");
        File.WriteAllText(file, "a red circle\r\n\n  a blue square  \na green triangle");
        Assert.Equal(["a red circle", "a blue square", "a green triangle"], Cli.PromptsFile.Read(file));
    }

    [Fact]
    public void AShapesCountBeyondMemoryIsRefusedBeforeDrawing() =>
        Assert.Contains("shapes:count must be at most", RefusedCheaply("train", "--data", "shapes:count=2000000000", "--out", Out, "--steps", "1"));

    [Fact]
    public void ThreadsFarBeyondTheCoresAreRefused() =>
        Assert.Contains("--threads must be at most", RefusedCheaply(Sample("--num", "1", "--threads", "100000")));

    /// <summary>The library refuses the same before sampling, for any caller of Generate.</summary>
    [Fact]
    public void GenerateRefusesWhatMemoryCannotHold()
    {
        var cfg = TinyModels.Config();
        using var model = TinyModels.RandomModel(cfg);
        using var pipe = DiffusionPipeline.FromModels(model, TinyModels.Info(cfg));
        var e = Assert.Throws<LdmOptionException>(() => pipe.Generate(int.MaxValue));
        Assert.Equal(("GeneratedImages", "Count"), (e.Owner, e.Property));
        Assert.True(pipe.MaxImagesInMemory() > 1000, $"{pipe.MaxImagesInMemory()} images of 3×8×8 fit");
        pipe.CheckFitsInMemory(64);
    }
}
