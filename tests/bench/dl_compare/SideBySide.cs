// SPDX-License-Identifier: MIT
using System.Globalization;
using Medallion.Threading;
using Medallion.Threading.Postgres;

namespace WhsemBench.DlCompare;

/// <summary>
/// Issue 16's per-call figure: LibWhsem's <see cref="PostgresDistributedSemaphore"/>
/// (max 1) and DistributedLock's <see cref="PostgresDistributedLock"/> in
/// one process, on one server, from one Npgsql connection string: an
/// uncontended try-acquire + release per call, synchronously and
/// asynchronously. Repetitions alternate which contender goes first, so
/// that the machine's drift hits both alike; each repetition's median is
/// kept, and the median of those is reported.
/// </summary>
internal static class SideBySide
{
    private delegate ValueTask<IDistributedSynchronizationHandle?> TryAsync();

    private sealed record Side(string Label, Func<IDistributedSynchronizationHandle?> Try, TryAsync TryAsync);

    public static int Run(string npgsql, int reps, int iterations, int warmup, Action<string, double> result)
    {
        string name = $"whsem-dlc-side-{Environment.ProcessId}-{Guid.NewGuid():N}"[..40];
        var semaphore = new PostgresDistributedSemaphore(name, 1, npgsql);
        var @lock = new PostgresDistributedLock(new PostgresAdvisoryLockKey(name, allowHashing: true), npgsql);
        var contenders = new[]
        {
            new Side("whsem", () => semaphore.TryAcquire(), async () => await semaphore.TryAcquireAsync().ConfigureAwait(false)),
            new Side("pglock", () => @lock.TryAcquire(), async () => await @lock.TryAcquireAsync().ConfigureAwait(false)),
        };

        // Connections open, code compiled (tier 1 needs time as well as calls).
        var warmUntil = Clock.Now() + (long)(0.5 * System.Diagnostics.Stopwatch.Frequency);
        do
        {
            foreach (var c in contenders)
            {
                Pairs(c, warmup, async: false).GetAwaiter().GetResult();
                Pairs(c, warmup, async: true).GetAwaiter().GetResult();
            }
        }
        while (Clock.Now() < warmUntil);

        var medians = new Dictionary<(string, bool), List<double>>();
        var all = new Dictionary<(string, bool), List<double>>();
        for (int r = 0; r < reps; r++)
        {
            foreach (var async in new[] { false, true })
            {
                var order = r % 2 == 0 ? contenders : contenders.Reverse().ToArray();
                foreach (var c in order)
                {
                    var us = Pairs(c, iterations, async).GetAwaiter().GetResult();
                    medians.TryAdd((c.Label, async), new());
                    all.TryAdd((c.Label, async), new());
                    medians[(c.Label, async)].Add(Stats.Percentile(us, 50));
                    all[(c.Label, async)].AddRange(us);
                }
            }
        }

        foreach (var async in new[] { false, true })
        {
            var mode = async ? "async" : "sync";
            double Median(string label) => Stats.Percentile(Stats.Sorted(medians[(label, async)]), 50);
            double P99(string label) => Stats.Percentile(Stats.Sorted(all[(label, async)]), 99);
            foreach (var c in contenders)
            {
                var spread = Stats.Sorted(medians[(c.Label, async)]);
                result($"side_{mode}_{c.Label}_median_us", Median(c.Label));
                result($"side_{mode}_{c.Label}_p99_us", P99(c.Label));
                result($"side_{mode}_{c.Label}_min_us", spread[0]);
                result($"side_{mode}_{c.Label}_max_us", spread[^1]);
            }
            var ratio = Median("whsem") / Median("pglock");
            result($"side_{mode}_ratio", ratio);
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{mode,-5} try-acquire + release: PostgresDistributedSemaphore (LibWhsem, max 1) median {Median("whsem"):0} us (p99 {P99("whsem"):0}), " +
                $"PostgresDistributedLock median {Median("pglock"):0} us (p99 {P99("pglock"):0}): {ratio:0.00}x ({reps} repetitions of {iterations} pairs)"));
        }
        return 0;
    }

    /// <summary>Per-pair times in µs, sorted; the async pairs awaited as an application would.</summary>
    private static async Task<List<double>> Pairs(Side c, int n, bool async)
    {
        var us = new List<double>(n);
        for (int i = 0; i < n; i++)
        {
            long t0 = Clock.Now();
            var h = (async ? await c.TryAsync().ConfigureAwait(false) : c.Try())
                ?? throw new InvalidOperationException($"{c.Label}: an uncontended try failed");
            if (async) { await h.DisposeAsync().ConfigureAwait(false); } else { h.Dispose(); }
            us.Add(Clock.MsSince(t0) * 1e3);
        }
        us.Sort();
        return us;
    }
}
