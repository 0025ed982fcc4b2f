// SPDX-License-Identifier: MIT
using System.Diagnostics;
using Xunit;

namespace LibWhsem.Tests;

/// <summary>
/// The PostgreSQL cluster of CTest's "pg" fixture (tests/pg/cluster.py),
/// which the csharp_pg_tests test reaches through PGSERVICEFILE and the
/// service "whsem_test". Tests of the category "pg" run only there.
/// </summary>
internal static class PgServer
{
    public const string Category = "pg";

    private static readonly Lazy<Dictionary<string, string>> s_service = new(ReadService);

    /// <summary>The libpq connection string of the cluster (unix socket).</summary>
    public static string Conninfo =>
        Environment.GetEnvironmentVariable("WHSEM_TEST_BACKEND")
        ?? throw new InvalidOperationException(
            "WHSEM_TEST_BACKEND is not set: the PostgreSQL tests (category pg) run under CTest's pg fixture: ctest -R csharp_pg_tests");

    /// <summary>The same cluster as a DistributedLock user would name it (Npgsql's form), over the unix socket.</summary>
    public static string Npgsql =>
        $"Host={Service["host"]};Port={Service["port"]};Database={Service["dbname"]};Username={Service["user"]}";

    public static string Port => Service["port"];

    /// <summary>The role with a password (scram-sha-256 over TCP only), made by cluster.py.</summary>
    public const string PasswordRole = "whsem_pw";

    public const string Password = "sekrit-pw-42";

    private static Dictionary<string, string> Service => s_service.Value;

    private static Dictionary<string, string> ReadService()
    {
        _ = Conninfo;
        var file = Environment.GetEnvironmentVariable("PGSERVICEFILE")
            ?? throw new InvalidOperationException("PGSERVICEFILE is not set (the pg fixture's service file)");
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        var inSection = false;
        foreach (var raw in File.ReadLines(file))
        {
            var line = raw.Trim();
            if (line.StartsWith('[')) { inSection = line == "[whsem_test]"; continue; }
            var eq = line.IndexOf('=', StringComparison.Ordinal);
            if (inSection && eq > 0) { values[line[..eq]] = line[(eq + 1)..]; }
        }
        return values;
    }

    /// <summary>Runs <paramref name="sql"/> as the cluster's superuser with psql; its unaligned output.</summary>
    public static string Psql(string sql)
    {
        var info = new ProcessStartInfo(PsqlPath)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", Conninfo, "-c", sql }) { info.ArgumentList.Add(a); }
        using var process = Process.Start(info) ?? throw new InvalidOperationException("could not start psql");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        Assert.True(process.WaitForExit(TimeSpan.FromSeconds(60)), "psql did not finish within 60 s");
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"psql failed ({process.ExitCode}): {stderr.Result}");
        return stdout.Result.Trim();
    }

    private static string PsqlPath =>
        Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql")
                .Select(d => Path.Combine(d, "bin", "psql"))
                .Where(File.Exists)
                .OrderByDescending(p => p, StringComparer.Ordinal)
                .FirstOrDefault() ?? "psql"
            : "psql";

    /// <summary>
    /// Ends the sessions of this process that hold a ticket of
    /// <paramref name="finalName"/> (as an administrator would, or a server
    /// going away), and returns how many it ended. libwhsem names its
    /// sessions "whsem &lt;pid&gt; ..." (application_name); a ticket is the
    /// two-key advisory lock (the name's id, index ≥ 0).
    /// </summary>
    public static int TerminateHolders(string finalName)
    {
        var name = finalName.Replace("'", "''", StringComparison.Ordinal);
        var ended = Psql(
            "SELECT count(pg_terminate_backend(l.pid)) FROM pg_locks l " +
            "JOIN whsem.semaphore s ON l.classid = s.id::oid AND l.objsubid = 2 " +
            "JOIN pg_stat_activity a ON a.pid = l.pid " +
            $"WHERE l.locktype = 'advisory' AND l.granted AND l.objid::int8 < 2147483648 AND s.name = '{name}' " +
            $"AND a.application_name LIKE 'whsem {Environment.ProcessId} %'");
        return int.Parse(ended, System.Globalization.CultureInfo.InvariantCulture);
    }
}
