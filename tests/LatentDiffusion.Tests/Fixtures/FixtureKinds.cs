namespace LatentDiffusion.Tests.Fixtures;

/// <summary>
/// The one place that says which manifest kinds the parity test knows (the kinds of the fixtures README).
/// A known kind must have a <see cref="FixtureKindRunner"/>, else the parity test fails; a kind listed as pending
/// is skipped with its reason until its C# code exists; any other kind found in a manifest is skipped as unknown.
/// </summary>
public static class FixtureKinds
{
    /// <summary>Kinds whose C# code exists: each needs a runner marked <c>[FixtureKind("kind")]</c>.</summary>
    public static IReadOnlyList<string> Known { get; } =
        ["dit", "dit_functions", "gaussian_diffusion", "autoencoder_kl", "frechet_distance", "inception_fid", "unet_ldm"];

    /// <summary>Kinds the fixtures README defines whose C# code does not exist yet → why they are skipped.
    /// Move a kind to <see cref="Known"/> when its runner is added.</summary>
    public static IReadOnlyDictionary<string, string> Pending { get; } = new Dictionary<string, string>
    {
    };

    /// <summary>Known kinds whose fixtures are not in the repository → what to do to run them (a skip, not a failure,
    /// when no fixture directory holds one).</summary>
    public static IReadOnlyDictionary<string, string> KeptOutsideTheRepository { get; } = new Dictionary<string, string>
    {
        ["inception_fid"] = "the 49 MB Inception fixture is kept outside the repository; set LDM_FIXTURES to a folder that has it",
    };
}
