// SPDX-License-Identifier: MIT
using System.Data.Common;
using System.Globalization;
using System.Text;

namespace Medallion.Threading.Postgres;

/// <summary>
/// Turns the connection string a DistributedLock user holds (Npgsql's
/// <c>Key=Value;...</c> form) into the libpq connection string libwhsem
/// connects with; libpq's own forms pass unchanged. The rules are the
/// README's ("Connection strings").
/// </summary>
internal static class PostgresConnectionString
{
    /// <summary>
    /// Every keyword of libpq's <c>key=value</c> form (up to PostgreSQL 17):
    /// a string made only of these, lowercase as libpq wants them, is libpq's.
    /// </summary>
    private static readonly HashSet<string> s_libpqKeywords = new(StringComparer.Ordinal)
    {
        "host", "hostaddr", "port", "dbname", "user", "password", "passfile", "require_auth",
        "channel_binding", "connect_timeout", "client_encoding", "options", "application_name",
        "fallback_application_name", "keepalives", "keepalives_idle", "keepalives_interval",
        "keepalives_count", "tcp_user_timeout", "replication", "gssencmode", "sslmode",
        "sslnegotiation", "requiressl", "sslcompression", "sslcert", "sslkey", "sslpassword",
        "sslcertmode", "sslrootcert", "sslcrl", "sslcrldir", "sslsni", "requirepeer",
        "ssl_min_protocol_version", "ssl_max_protocol_version", "krbsrvname", "gsslib",
        "gssdelegation", "service", "target_session_attrs", "load_balance_hosts",
    };

    /// <summary>Npgsql keywords (lowercase, spaces removed) and the libpq keyword each becomes.</summary>
    private static readonly Dictionary<string, string> s_translated = new(StringComparer.Ordinal)
    {
        ["host"] = "host", ["server"] = "host",
        ["port"] = "port",
        ["database"] = "dbname", ["db"] = "dbname",
        ["username"] = "user", ["user"] = "user", ["userid"] = "user", ["uid"] = "user",
        ["password"] = "password", ["psw"] = "password", ["pwd"] = "password",
        ["passfile"] = "passfile",
        ["sslmode"] = "sslmode",
        ["timeout"] = "connect_timeout",
        ["rootcertificate"] = "sslrootcert",
        ["sslcertificate"] = "sslcert", ["clientcertificate"] = "sslcert",
        ["sslkey"] = "sslkey", ["clientcertificatekey"] = "sslkey",
        ["sslpassword"] = "sslpassword",
        ["kerberosservicename"] = "krbsrvname",
        ["gssencryptionmode"] = "gssencmode",
        ["channelbinding"] = "channel_binding",
        ["targetsessionattributes"] = "target_session_attrs",
        ["loadbalancehosts"] = "load_balance_hosts",
    };

    /// <summary>
    /// Npgsql keywords that tune Npgsql's own client (its pool, buffers,
    /// commands, logging) or that libwhsem decides itself: they mean nothing
    /// for libwhsem's sessions and are dropped.
    /// </summary>
    private static readonly HashSet<string> s_ignored = new(StringComparer.Ordinal)
    {
        // libwhsem's own: "whsem <pid> <held since> <host>" (who holds what).
        "applicationname",
        // Npgsql's pool and commands: libwhsem keeps its own connections and
        // runs only its own statements, schema-qualified.
        "pooling", "minpoolsize", "maxpoolsize", "minimumpoolsize", "maximumpoolsize",
        "connectionidlelifetime", "connectionpruninginterval", "connectionlifetime",
        "commandtimeout", "internalcommandtimeout", "cancellationtimeout", "enlist", "multiplexing",
        "maxautoprepare", "autoprepareminusages", "noresetonclose", "readbuffersize",
        "writebuffersize", "socketreceivebuffersize", "socketsendbuffersize", "searchpath",
        "includeerrordetail", "logparameters", "persistsecurityinfo", "servercompatibilitymode",
        "arraynullabilitymode", "loadtablecomposites", "hostrecheckseconds", "timezone",
        "encoding", "clientencoding", "integratedsecurity",
        // Liveness: libwhsem sets TCP keepalives and pings connections that
        // carry tickets itself (connectionCheckCadence).
        "keepalive", "tcpkeepalive", "tcpkeepalivetime", "tcpkeepaliveinterval",
        // Obsolete since Npgsql 6: SSL Mode=Require no longer validates, as libpq's.
        "trustservercertificate",
    };

    /// <summary>The order of the keywords written, so that equal settings give one string (one server per process).</summary>
    private static readonly string[] s_order =
    {
        "host", "port", "dbname", "user", "password", "passfile", "connect_timeout", "sslmode",
        "sslrootcert", "sslcert", "sslkey", "sslpassword", "krbsrvname", "gssencmode",
        "channel_binding", "target_session_attrs", "load_balance_hosts",
    };

    private const string DefaultPort = "5432";

    /// <summary>The libpq connection string for <paramref name="connectionString"/>.</summary>
    /// <exception cref="ArgumentNullException">It is null.</exception>
    /// <exception cref="ArgumentException">It is empty, not valid, or has a keyword that cannot be honoured (the message names it, never a password).</exception>
    internal static string ToLibpq(string connectionString)
    {
        ArgumentNullException.ThrowIfNull(connectionString);
        if (string.IsNullOrWhiteSpace(connectionString))
        {
            throw new ArgumentException(
                "The connection string is empty; it must name a PostgreSQL server (libwhsem would take an empty one for this machine).",
                nameof(connectionString));
        }
        if (connectionString.Contains('\0'))
        {
            throw new ArgumentException("The connection string contains the character '\\0' (NUL).", nameof(connectionString));
        }
        var text = connectionString.Trim();
        if (text.StartsWith("postgresql://", StringComparison.Ordinal)
            || text.StartsWith("postgres://", StringComparison.Ordinal)
            || IsLibpqConninfo(text))
        {
            return text;
        }
        return FromNpgsql(text);
    }

    /// <summary>
    /// Whether <paramref name="text"/> reads as libpq's <c>key=value</c> form:
    /// whitespace-separated pairs of libpq's keywords, values bare or in single
    /// quotes, and no bare ';' (which only Npgsql's form uses).
    /// </summary>
    internal static bool IsLibpqConninfo(string text)
    {
        var i = 0;
        var pairs = 0;
        while (true)
        {
            while (i < text.Length && char.IsWhiteSpace(text[i])) { i++; }
            if (i == text.Length) { return pairs > 0; }

            var keyStart = i;
            while (i < text.Length && text[i] != '=' && !char.IsWhiteSpace(text[i])) { i++; }
            var key = text[keyStart..i];
            while (i < text.Length && char.IsWhiteSpace(text[i])) { i++; }
            if (i == text.Length || text[i] != '=' || !s_libpqKeywords.Contains(key)) { return false; }
            i++;
            while (i < text.Length && char.IsWhiteSpace(text[i])) { i++; }

            if (i < text.Length && text[i] == '\'')
            {
                for (i++; ; i++)
                {
                    if (i >= text.Length) { return false; }
                    if (text[i] == '\\') { i++; continue; }
                    if (text[i] == '\'') { i++; break; }
                }
            }
            else
            {
                for (; i < text.Length && !char.IsWhiteSpace(text[i]); i++)
                {
                    if (text[i] == ';') { return false; }
                    if (text[i] == '\\') { i++; }
                }
            }
            pairs++;
        }
    }

    private static string FromNpgsql(string text)
    {
        var builder = new DbConnectionStringBuilder();
        try
        {
            builder.ConnectionString = text;
        }
        catch (ArgumentException e)
        {
            // Its message gives a position, never the text (which may hold a password).
            throw new ArgumentException(
                $"The connection string is neither a libpq connection string or URI nor an Npgsql one: {e.Message}",
                "connectionString", e);
        }

        var libpq = new Dictionary<string, string>(StringComparer.Ordinal);
        var from = new Dictionary<string, string>(StringComparer.Ordinal);
        string? hosts = null;
        foreach (string key in builder.Keys)
        {
            var value = Convert.ToString(builder[key], CultureInfo.InvariantCulture) ?? "";
            var normalized = key.Replace(" ", "", StringComparison.Ordinal).ToLowerInvariant();
            if (s_ignored.Contains(normalized)) { continue; }
            if (normalized == "checkcertificaterevocation")
            {
                if (IsTrue(key, value)) { throw Refused(key, "libpq checks revocation only against a CRL file (sslcrl), not online"); }
                continue;
            }
            if (!s_translated.TryGetValue(normalized, out var target))
            {
                throw Refused(key, normalized switch
                {
                    "options" => "server options (statement_timeout, lock_timeout, ...) would change how acquisitions wait",
                    _ => "it is not a keyword that LibWhsem knows or can honour",
                });
            }
            if (from.TryGetValue(target, out var earlier))
            {
                throw Refused(key, $"it says the same as '{earlier}'");
            }
            from[target] = key;

            if (target == "host")
            {
                hosts = value;
                continue;
            }
            var translated = Translate(key, target, value);
            if (translated != null) { libpq[target] = translated; }
        }
        if (hosts != null) { AddHosts(libpq, hosts, from); }

        var sb = new StringBuilder();
        foreach (var keyword in s_order)
        {
            if (!libpq.TryGetValue(keyword, out var value)) { continue; }
            if (sb.Length > 0) { sb.Append(' '); }
            sb.Append(keyword).Append('=').Append(Quote(value));
        }
        if (sb.Length == 0)
        {
            throw new ArgumentException(
                "The connection string names no server, database or user: nothing in it is for libpq.", "connectionString");
        }
        return sb.ToString();
    }

    /// <summary>The libpq value of one Npgsql setting, or null when it asks for libpq's default.</summary>
    private static string? Translate(string key, string target, string value)
    {
        switch (target)
        {
            case "port":
                return int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var port) && port is > 0 and < 65536
                    ? value
                    : throw Refused(key, $"'{value}' is not a TCP port");
            case "connect_timeout":
                return int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out _)
                    ? value
                    : throw Refused(key, $"'{value}' is not a number of seconds");
            case "sslmode":
                return Enumerated(key, value, new()
                {
                    ["disable"] = "disable", ["allow"] = "allow", ["prefer"] = "prefer", ["require"] = "require",
                    ["verifyca"] = "verify-ca", ["verifyfull"] = "verify-full",
                });
            case "gssencmode":
            case "channel_binding":
                return Enumerated(key, value, new() { ["disable"] = "disable", ["prefer"] = "prefer", ["require"] = "require" });
            case "target_session_attrs":
                return Enumerated(key, value, new()
                {
                    ["any"] = "any", ["readwrite"] = "read-write", ["readonly"] = "read-only",
                    ["primary"] = "primary", ["standby"] = "standby", ["preferstandby"] = "prefer-standby",
                });
            case "load_balance_hosts":
                return IsTrue(key, value) ? "random" : null;
            default:
                return value;
        }
    }

    private static string Enumerated(string key, string value, Dictionary<string, string> values) =>
        values.TryGetValue(value.Replace("-", "", StringComparison.Ordinal).Replace("_", "", StringComparison.Ordinal).ToLowerInvariant(), out var libpq)
            ? libpq
            : throw Refused(key, $"'{value}' is not one of the values libpq takes ({string.Join(", ", values.Values)})");

    private static bool IsTrue(string key, string value) =>
        value.Trim().ToLowerInvariant() switch
        {
            "true" or "yes" or "1" => true,
            "false" or "no" or "0" => false,
            _ => throw Refused(key, "it must be true or false"),
        };

    /// <summary>
    /// Npgsql's Host is a list of <c>host</c>, <c>host:port</c> or
    /// <c>[ipv6]:port</c>; libpq takes the hosts and the ports as two lists.
    /// </summary>
    private static void AddHosts(Dictionary<string, string> libpq, string value, Dictionary<string, string> from)
    {
        var names = new List<string>();
        var ports = new List<string?>();
        foreach (var entry in value.Split(','))
        {
            var host = entry.Trim();
            string? port = null;
            if (host.StartsWith('['))
            {
                var close = host.IndexOf(']', StringComparison.Ordinal);
                if (close < 0) { throw Refused(from["host"], "an IPv6 address in '[' lacks its ']'"); }
                var rest = host[(close + 1)..];
                if (rest.StartsWith(':')) { port = rest[1..]; }
                else if (rest.Length > 0) { throw Refused(from["host"], $"'{host}' is not host, host:port or [address]:port"); }
                host = host[1..close];
            }
            else if (!host.StartsWith('/') && host.IndexOf(':', StringComparison.Ordinal) is var colon and > 0
                     && host.IndexOf(':', colon + 1) < 0)
            {
                port = host[(colon + 1)..];
                host = host[..colon];
            }
            if (host.Length == 0) { throw Refused(from["host"], "a host in the list is empty"); }
            if (port != null) { Translate(from["host"], "port", port); }
            names.Add(host);
            ports.Add(port);
        }
        libpq["host"] = string.Join(',', names);
        if (ports.Any(p => p != null))
        {
            // One port per host; those without one get Port's (or Npgsql's default).
            var fallback = libpq.GetValueOrDefault("port", DefaultPort);
            libpq["port"] = string.Join(',', ports.Select(p => p ?? fallback));
        }
    }

    /// <summary>A libpq value, in single quotes when it is empty or has a space, quote, backslash or '='.</summary>
    internal static string Quote(string value)
    {
        if (value.Length > 0 && !value.Any(c => char.IsWhiteSpace(c) || c is '\'' or '\\' or '='))
        {
            return value;
        }
        return "'" + value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("'", "\\'", StringComparison.Ordinal) + "'";
    }

    private static ArgumentException Refused(string key, string why) =>
        new($"The connection string's '{key}' cannot be used with PostgresDistributedSemaphore: {why}.", "connectionString");
}
