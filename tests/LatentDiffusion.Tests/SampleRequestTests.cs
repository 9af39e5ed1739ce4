using LatentDiffusion.Denoisers;
using LatentDiffusion.Diffusion;
using LatentDiffusion.Pipelines;

namespace LatentDiffusion.Tests;

/// <summary>The one validation of a sample request (ldm sample and ldm serve) and the command line that repeats it.</summary>
public class SampleRequestTests
{
    static DenoiserInfo Model(string name) => DenoiserCheckpoint.PeekInfo(Path.Combine(RepoPaths.Root, "models", name + ".safetensors"));

    [Fact]
    public void ClassRequestFillsInTheRecommendedSettingsAndGroupsImagesByClass()
    {
        var info = Model("shapes-class");
        var resolved = new SampleRequest { ClassIds = [4, 0], Count = 5, Steps = 12, Seed = 7 }.Resolve(info);

        Assert.Equal([4, 4, 4, 0, 0], resolved.Labels);
        Assert.Null(resolved.Prompts);
        Assert.Equal(info.SamplingOrDefault.Sampler, resolved.Options.Sampler);
        Assert.Equal(info.SamplingOrDefault.GuidanceScale, resolved.Options.GuidanceScale);
        Assert.Equal((12, 7L), (resolved.Options.Steps, resolved.Options.Seed));
        Assert.Equal(
            $"ldm sample --model models/shapes-class.safetensors --classes 4,0 --num 5 --sampler {Samplers.Name(info.SamplingOrDefault.Sampler)} --steps 12 --guidance {info.SamplingOrDefault.GuidanceScale} --seed 7",
            SampleRequest.CommandLine("models/shapes-class.safetensors", resolved));
    }

    [Fact]
    public void TextRequestQuotesPromptsForTheShell()
    {
        var resolved = new SampleRequest { Prompts = ["a red circle at the top", "a blue square"], Count = 3, Sampler = SamplerKind.DpmSolverPP2M, GuidanceScale = 2.5 }
            .Resolve(Model("shapes-text"));

        Assert.Equal(["a red circle at the top", "a red circle at the top", "a blue square"], resolved.Prompts);
        string command = SampleRequest.CommandLine("my models/m.safetensors", resolved);
        Assert.StartsWith("ldm sample --model 'my models/m.safetensors' --prompt 'a red circle at the top' --prompt 'a blue square' --num 3 --sampler dpm++2m", command);
        Assert.Equal("'it'\\''s'", SampleRequest.ShellQuote("it's"));
        Assert.Equal(2, resolved.GridColumns);
        Assert.Contains("--guidance 2.5", command);
    }

    [Theory]
    [InlineData("shapes-class", null, "x", null, null, "this is a class-conditional model; choose classes with --classes instead of --prompt.")]
    [InlineData("shapes-text", 1, null, null, null, "this is a text-conditioned model; describe the images with --prompt \"...\" instead of --classes.")]
    [InlineData("shapes-text", null, null, null, null, "this is a text-conditioned model; give at least one --prompt \"...\" (or --prompts-file).")]
    [InlineData("shapes-class", 12, null, null, null, "--classes: class id 12 is outside this model's classes 0..11; use ids in that range.")]
    [InlineData("shapes-class", 1, null, 0, null, "--num must be at least 1, got 0.")]
    [InlineData("shapes-class", 1, null, 2, 0, "SamplingOptions.Steps")]
    [InlineData("shapes-text", null, " ", null, null, "--prompt is empty")]
    [InlineData("shapes-text", null, "a purple circle", null, null, "purple")]
    public void BadRequestsAreOneLineErrors(string model, int? classId, string? prompt, int? count, int? steps, string message)
    {
        var request = new SampleRequest
        {
            ClassIds = classId is int c ? [c] : null,
            Prompts = prompt is null ? null : [prompt],
            Count = count,
            Steps = steps,
        };
        var e = Assert.ThrowsAny<LdmException>(() => request.Resolve(Model(model)));
        Assert.Contains(message, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }
}
