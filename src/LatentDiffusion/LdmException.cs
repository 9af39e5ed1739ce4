namespace LatentDiffusion;

/// <summary>
/// An error the user can fix: a bad path, a corrupted file, an impossible config, a class id out of range.
/// The message is one line that names the problem and the fix; the command-line tool prints it without a stack trace.
/// </summary>
public class LdmException : Exception
{
    /// <summary>An error with a one-line message that names the problem and the fix.</summary>
    public LdmException(string message) : base(message) { }
    /// <summary>An error with a one-line message, caused by <paramref name="inner"/>.</summary>
    public LdmException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>
/// A setting with a value that is not allowed, in the library's own terms: <c>SamplingOptions.Steps must be at least 1,
/// got 0; 50 to 250 is usual.</c> A front end that exposes the setting under another name (the <c>ldm</c> tool's
/// <c>--steps</c>) rewrites the message with <see cref="MessageFor"/>.
/// </summary>
public sealed class LdmOptionException : LdmException
{
    /// <param name="owner">The type that holds the setting, e.g. <c>SamplingOptions</c>.</param>
    /// <param name="property">The property, e.g. <c>Steps</c>.</param>
    /// <param name="value">The value given, as text.</param>
    /// <param name="requirement">What is allowed, phrased after "must": <c>be at least 1</c>.</param>
    /// <param name="hint">Optional advice, e.g. <c>50 to 250 is usual</c>.</param>
    public LdmOptionException(string owner, string property, object? value, string requirement, string? hint = null)
        : base(Compose($"{owner}.{property}", value, requirement, hint))
    {
        Owner = owner;
        Property = property;
        Value = Format(value);
        Requirement = requirement;
        Hint = hint;
    }

    /// <summary>The type that holds the setting, e.g. <c>SamplingOptions</c>.</summary>
    public string Owner { get; }
    /// <summary>The setting's property name, e.g. <c>Steps</c>.</summary>
    public string Property { get; }
    /// <summary>The rejected value as text.</summary>
    public string Value { get; }
    /// <summary>What the value must satisfy, phrased after "must", e.g. <c>be at least 1</c>.</summary>
    public string Requirement { get; }
    /// <summary>Advice on a usual value, or null.</summary>
    public string? Hint { get; }

    /// <summary>The same message with the setting called <paramref name="name"/> (for example a command-line flag).</summary>
    public string MessageFor(string name) => Compose(name, Value, Requirement, Hint);

    static string Compose(string name, object? value, string requirement, string? hint) =>
        $"{name} must {requirement}, got {Format(value)}{(string.IsNullOrEmpty(hint) ? "" : "; " + hint)}.";

    static string Format(object? value) => value switch
    {
        null => "nothing",
        string s => s,
        IFormattable f => f.ToString(null, System.Globalization.CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };
}
