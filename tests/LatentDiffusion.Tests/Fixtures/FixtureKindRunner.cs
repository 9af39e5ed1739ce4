using System.Reflection;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Tests.Fixtures;

/// <summary>Marks a runner for one manifest `kind`; the parity test finds runners by this attribute.</summary>
[AttributeUsage(AttributeTargets.Class)]
public sealed class FixtureKindAttribute(string kind) : Attribute
{
    public string Kind { get; } = kind;
}

/// <summary>
/// Runs the cases of one fixture folder of a known kind through our C# code.
/// One instance per folder: the constructor builds the model from the manifest's config and weights.
/// </summary>
public abstract class FixtureKindRunner : IDisposable
{
    protected FixtureKindRunner(Fixture fixture) { Fixture = fixture; }
    public Fixture Fixture { get; }

    /// <summary>The ops this runner knows; cases with another op are reported as skipped.</summary>
    public abstract bool Supports(string op);

    /// <summary>Runs one case and returns its outputs by output name (as in the case's `outputs`),
    /// plus any debug outputs under their `debug_outputs` names prefixed with "debug:".</summary>
    public abstract Dictionary<string, Tensor> Run(FixtureCase c);

    /// <summary>Every runner of this assembly by the kind of its <see cref="FixtureKindAttribute"/>.</summary>
    public static IReadOnlyDictionary<string, Type> ByKind { get; } = typeof(FixtureKindRunner).Assembly.GetTypes()
        .Where(t => !t.IsAbstract && typeof(FixtureKindRunner).IsAssignableFrom(t))
        .Select(t => (t, a: t.GetCustomAttribute<FixtureKindAttribute>()))
        .Where(p => p.a != null)
        .ToDictionary(p => p.a!.Kind, p => p.t);

    public virtual void Dispose() { }
}
