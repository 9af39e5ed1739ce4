using System.CommandLine;
using LatentDiffusion;

namespace LatentDiffusion.Cli;

/// <summary>
/// Parses and runs a command; a user error (<see cref="LdmException"/>) becomes one line on stderr and exit code 1,
/// with no stack trace. Any other exception is a bug: it is printed whole with exit code 2.
/// </summary>
public static class CliRunner
{
    public static int Run(RootCommand root, string[] args)
    {
        try
        {
            return root.Parse(args).Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (Exception e) when (Unwrap(e) is LdmException user)
        {
            Console.Error.WriteLine($"error: {user.Message}");
            return 1;
        }
    }

    static Exception Unwrap(Exception e)
    {
        while ((e is AggregateException or System.Reflection.TargetInvocationException) && e.InnerException != null) e = e.InnerException;
        return e;
    }
}
