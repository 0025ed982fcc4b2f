// SPDX-License-Identifier: MIT
using Medallion.Threading;
using Medallion.Threading.Postgres;
using Medallion.Threading.Redis;
using StackExchange.Redis;

namespace WhsemBench.DlCompare;

/// <summary>
/// Which DistributedLock primitive a run measures, and how it is built. The
/// options travel to the child processes as the same command-line words, so
/// that every process of a part builds the primitive the same way.
/// </summary>
internal sealed class Contender : IDisposable
{
    public string Kind = "";            // pglock | redis | npgsql | whsem (LibWhsem's PostgresDistributedSemaphore)
    public string Pg = "";              // Npgsql connection string
    public string Redis = "";           // host:port
    public int Max = 1;                 // redis, whsem: max count (pglock is always 1)
    public double? ExpirySeconds;       // redis: lease; the library's default (30 s) if unset
    public (double Min, double Max)? BusyWaitMs; // redis: sleep between tries; default 10-800 ms

    private ConnectionMultiplexer? _redis;

    public static readonly string[] Options = ["--contender", "--pg", "--redis", "--max", "--expiry", "--busy-wait"];

    public void Set(string option, string value)
    {
        switch (option)
        {
            case "--contender": Kind = value; break;
            case "--pg": Pg = value; break;
            case "--redis": Redis = value; break;
            case "--max": Max = int.Parse(value); break;
            case "--expiry": ExpirySeconds = double.Parse(value, System.Globalization.CultureInfo.InvariantCulture); break;
            case "--busy-wait":
                var parts = value.Split(':');
                BusyWaitMs = (double.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture),
                              double.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture));
                break;
            default: throw new ArgumentException(option);
        }
    }

    public IEnumerable<string> Args()
    {
        yield return "--contender"; yield return Kind;
        if (Pg != "") { yield return "--pg"; yield return Pg; }
        if (Redis != "") { yield return "--redis"; yield return Redis; }
        yield return "--max"; yield return Max.ToString();
        if (ExpirySeconds is { } e) { yield return "--expiry"; yield return e.ToString(System.Globalization.CultureInfo.InvariantCulture); }
        if (BusyWaitMs is { } b)
        {
            yield return "--busy-wait";
            yield return FormattableString.Invariant($"{b.Min}:{b.Max}");
        }
    }

    public int EffectiveMax => Kind is "redis" or "whsem" ? Max : 1;

    /// <summary>A primitive on a name: its TryAcquire returns null when nothing came.</summary>
    public Func<TimeSpan, IDistributedSynchronizationHandle?> Make(string name)
    {
        switch (Kind)
        {
            case "pglock":
            {
                var l = new PostgresDistributedLock(new PostgresAdvisoryLockKey(name, allowHashing: true), Pg);
                return t => l.TryAcquire(t);
            }
            case "redis":
            {
                _redis ??= ConnectRedis();
                var s = new RedisDistributedSemaphore(name, Max, _redis.GetDatabase(), o =>
                {
                    if (ExpirySeconds is { } e) o.Expiry(TimeSpan.FromSeconds(e));
                    if (BusyWaitMs is { } b) o.BusyWaitSleepTime(TimeSpan.FromMilliseconds(b.Min), TimeSpan.FromMilliseconds(b.Max));
                });
                return t => s.TryAcquire(t);
            }
            case "whsem":
            {
                // The same Npgsql connection string as PostgresDistributedLock's.
                var s = new PostgresDistributedSemaphore(name, Max, Pg);
                return t => s.TryAcquire(t);
            }
            default:
                throw new ArgumentException($"--contender {Kind}: pglock, redis or whsem");
        }
    }

    // abortConnect=false: a child that starts while the server restarts in
    // (d) keeps trying in the background instead of failing its first call.
    private ConnectionMultiplexer ConnectRedis() => ConnectionMultiplexer.Connect($"{Redis},abortConnect=false");

    public void Dispose() => _redis?.Dispose();
}
