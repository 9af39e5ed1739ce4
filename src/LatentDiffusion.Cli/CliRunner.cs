using System.CommandLine;
using System.CommandLine.Invocation;
using LatentDiffusion;

namespace LatentDiffusion.Cli;

/// <summary>
/// Parses and runs a command. A user error, whether the command line does not parse or the command throws
/// <see cref="LdmException"/>, becomes one line <c>error: ...</c> on stderr and exit code 1, with no stack trace.
/// Any other exception is a bug: it is printed whole with exit code 2.
/// </summary>
public static class CliRunner
{
    public static int Run(RootCommand root, string[] args)
    {
        List<string[]>? stages;
        try { stages = Recipe.Expand(args, root); }
        catch (LdmException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
        if (stages is null) return RunOne(root, args);
        foreach (var stage in stages)
        {
            Console.WriteLine("recipe: ldm " + string.Join(' ', stage.Select(Quote)));
            int code = RunOne(root, stage);
            if (code != 0) return code;
        }
        return 0;
    }

    static string Quote(string token) => token.Length > 0 && token.All(c => char.IsLetterOrDigit(c) || "-_./:=,+".Contains(c)) ? token : $"'{token}'";

    static int RunOne(RootCommand root, string[] args)
    {
        var parse = root.Parse(args);
        if (parse.Action is ParseErrorAction)
        {
            // System.CommandLine would print every error and then the whole help text; one line that names the
            // problem and where the options are listed is easier to read (and to grep in a CI log).
            string errors = string.Join("; ", parse.Errors.Select(e => e.Message.Trim().TrimEnd('.')));
            string command = string.Join(' ', CommandPath(parse.CommandResult));
            Console.Error.WriteLine($"error: {errors}; run `{command} --help` for the options.");
            return 1;
        }
        try
        {
            if (parse.CommandResult.Command is not RootCommand) Ranks.CheckCommand(parse.CommandResult.Command.Name);
            return parse.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (Exception e) when (Unwrap(e) is LdmException user)
        {
            Console.Error.WriteLine($"error: {OptionNames.MessageOf(user)}");
            return 1;
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"internal error (a bug in ldm, please report it): {Unwrap(e)}");
            return 2;
        }
    }

    static IEnumerable<string> CommandPath(System.CommandLine.Parsing.CommandResult? result)
    {
        var names = new List<string>();
        for (var r = result; r != null; r = r.Parent as System.CommandLine.Parsing.CommandResult)
            names.Add(r.Command is RootCommand ? "ldm" : r.Command.Name);
        names.Reverse();
        return names;
    }

    static Exception Unwrap(Exception e)
    {
        while ((e is AggregateException or System.Reflection.TargetInvocationException) && e.InnerException != null) e = e.InnerException;
        return e;
    }
}
