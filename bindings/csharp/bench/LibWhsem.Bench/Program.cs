// SPDX-License-Identifier: MIT
// Per-call cost of TryAcquire(TimeSpan.Zero) + Dispose, next to the same
// pair made through the raw P/Invoke layer (the C cost as this process pays
// it) and, when given with --c-ns, the core benchmark's C figure of the same
// run. Repetitions of every variant are interleaved and medians reported,
// because absolute numbers on a shared 2-core VM drift by tens of percent.
//
// With --backend=CONNINFO: the same pair through PostgresDistributedSemaphore
// on that PostgreSQL database, timed pair by pair as whsem_bench_pg's (a)
// (max count 2, the median of --iterations pairs after a warm-up), printed
// as "RESULT csharp a_median_us X" for bench.sh to interleave with the C runs.
using System.Diagnostics;
using System.Globalization;
using LibWhsem.Interop;
using Medallion.Threading.Postgres;
using Medallion.Threading.WaitHandles;

static unsafe class Program
{
    static int Main(string[] args)
    {
        var reps = 15;
        var pairs = 2_000_000;
        double? cNs = null;
        string? backend = null;
        int iterations = 2000, warmup = 200;
        foreach (var a in args)
        {
            if (a.StartsWith("--reps=", StringComparison.Ordinal)) { reps = int.Parse(a[7..], CultureInfo.InvariantCulture); }
            else if (a.StartsWith("--pairs=", StringComparison.Ordinal)) { pairs = int.Parse(a[8..], CultureInfo.InvariantCulture); }
            else if (a.StartsWith("--c-ns=", StringComparison.Ordinal)) { cNs = double.Parse(a[7..], CultureInfo.InvariantCulture); }
            else if (a.StartsWith("--backend=", StringComparison.Ordinal)) { backend = a[10..]; }
            else if (a.StartsWith("--iterations=", StringComparison.Ordinal)) { iterations = int.Parse(a[13..], CultureInfo.InvariantCulture); }
            else if (a.StartsWith("--warmup=", StringComparison.Ordinal)) { warmup = int.Parse(a[9..], CultureInfo.InvariantCulture); }
            else { Console.Error.WriteLine($"unknown argument {a}; use --reps=N --pairs=N --c-ns=X, or --backend=CONNINFO --iterations=N --warmup=N"); return 2; }
        }
        if (backend != null) { return RunOnServer(backend, iterations, warmup); }

        var name = $"whsem-cs-bench-{Environment.ProcessId}";
        var semaphore = new WaitHandleDistributedSemaphore(name, 1);
        try
        {
            return Run(semaphore, reps, pairs, cNs);
        }
        finally
        {
            var utf8 = System.Text.Encoding.UTF8.GetBytes(semaphore.Name + "\0");
            fixed (byte* p = utf8) { Native.whsem_unlink(p, Native.WHSEM_OPEN_EXACT_NAME | Native.WHSEM_UNLINK_FORCE); }
        }
    }

    static int Run(WaitHandleDistributedSemaphore semaphore, int reps, int pairs, double? cNs)
    {
        // Opens the semaphore and reaches steady state (tier-1 JIT, PGO).
        using (semaphore.TryAcquire(TimeSpan.Zero)) { }
        ulong raw = RawSemaphore(semaphore);
        for (var i = 0; i < 3; i++) { RawPairs(raw, pairs / 4); BindingPairs(semaphore, pairs / 4); }

        var rawNs = new List<double>();
        var bindingNs = new List<double>();
        long allocated = 0;
        var gen0Before = GC.CollectionCount(0);
        for (var r = 0; r < reps; r++)
        {
            // Alternate which goes first, so that drift hits both alike.
            if (r % 2 == 0)
            {
                rawNs.Add(RawPairs(raw, pairs));
                bindingNs.Add(BindingPairs(semaphore, pairs, ref allocated));
            }
            else
            {
                bindingNs.Add(BindingPairs(semaphore, pairs, ref allocated));
                rawNs.Add(RawPairs(raw, pairs));
            }
        }
        var gen0 = GC.CollectionCount(0) - gen0Before;

        double rawMed = Median(rawNs), bindMed = Median(bindingNs);
        Console.WriteLine($"machine: {Environment.ProcessorCount} CPUs, {System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription}, libwhsem {WhsemLibrary.LoadedVersion} ({WhsemLibrary.LoadedPath})");
        Console.WriteLine($"{reps} repetitions x {pairs} pairs, medians (min ... max)");
        Console.WriteLine($"raw P/Invoke whsem_acquire(0)+whsem_release    ns/pair: {rawMed,7:F2}  ({rawNs.Min():F2} ... {rawNs.Max():F2})");
        Console.WriteLine($"TryAcquire(TimeSpan.Zero)+Dispose (binding)     ns/pair: {bindMed,7:F2}  ({bindingNs.Min():F2} ... {bindingNs.Max():F2})");
        Console.WriteLine($"binding allocations: {(double)allocated / ((long)reps * pairs):F1} bytes/pair; gen0 collections during the timed part: {gen0}");
        Console.WriteLine($"ratio binding / raw P/Invoke: {bindMed / rawMed:F2}x");
        if (cNs is { } c)
        {
            var ratio = bindMed / c;
            Console.WriteLine($"C figure (whsem_bench a_uncontended/whsem, same run): {c:F2} ns/pair");
            Console.WriteLine($"ratio binding / C: {ratio:F2}x (target <= 1.5x: {(ratio <= 1.5 ? "PASS" : "MISS")})");
        }
        return 0;
    }

    static int RunOnServer(string backend, int iterations, int warmup)
    {
        var semaphore = new PostgresDistributedSemaphore($"whsem-cs-bench-pg-{Environment.ProcessId}", 2, backend);
        var us = new double[iterations];
        // Connected, and the pair compiled at tier 1 (which takes time as
        // well as calls): at least the warm-up pairs and 300 ms.
        var warmUntil = Stopwatch.GetTimestamp() + Stopwatch.Frequency * 3 / 10;
        for (var i = 0; i < warmup || Stopwatch.GetTimestamp() < warmUntil; i++) { Pair(semaphore); }
        for (var i = 0; i < iterations; i++)
        {
            var t0 = Stopwatch.GetTimestamp();
            Pair(semaphore);
            us[i] = Stopwatch.GetElapsedTime(t0).TotalMicroseconds;
        }
        Array.Sort(us);
        var median = us[(iterations - 1) / 2];
        Console.Error.WriteLine($"(a) C# TryAcquire(TimeSpan.Zero)+Dispose on PostgreSQL: median {median:F0} us, p99 {us[(int)Math.Ceiling(iterations * 0.99) - 1]:F0} us ({iterations} pairs)");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"RESULT csharp a_median_us {median:F3}"));
        return 0;

        static void Pair(PostgresDistributedSemaphore semaphore) =>
            (semaphore.TryAcquire(TimeSpan.Zero) ?? throw new InvalidOperationException("uncontended try failed")).Dispose();
    }

    static ulong RawSemaphore(WaitHandleDistributedSemaphore semaphore)
    {
        // The binding keeps its handle private; the raw loop opens its own on
        // the same name, as a C program would.
        var utf8 = System.Text.Encoding.UTF8.GetBytes(semaphore.Name + "\0");
        var options = new whsem_open_options { struct_size = (uint)sizeof(whsem_open_options), flags = Native.WHSEM_OPEN_EXACT_NAME };
        ulong sem;
        fixed (byte* p = utf8)
        {
            if (Native.whsem_open(p, semaphore.MaxCount, &options, &sem) != Native.WHSEM_OK) { throw new InvalidOperationException("open"); }
        }
        return sem;
    }

    static double RawPairs(ulong sem, int pairs)
    {
        var sw = Stopwatch.StartNew();
        for (var i = 0; i < pairs; i++)
        {
            ulong t;
            if (Native.whsem_acquire(sem, 0, 0, &t) != Native.WHSEM_OK) { throw new InvalidOperationException("raw acquire"); }
            Native.whsem_release(t);
        }
        return sw.Elapsed.TotalNanoseconds / pairs;
    }

    static double BindingPairs(WaitHandleDistributedSemaphore semaphore, int pairs)
    {
        long ignored = 0;
        return BindingPairs(semaphore, pairs, ref ignored);
    }

    static double BindingPairs(WaitHandleDistributedSemaphore semaphore, int pairs, ref long allocated)
    {
        var before = GC.GetAllocatedBytesForCurrentThread();
        var sw = Stopwatch.StartNew();
        for (var i = 0; i < pairs; i++)
        {
            var handle = semaphore.TryAcquire(TimeSpan.Zero) ?? throw new InvalidOperationException("binding acquire");
            handle.Dispose();
        }
        var ns = sw.Elapsed.TotalNanoseconds / pairs;
        allocated += GC.GetAllocatedBytesForCurrentThread() - before;
        return ns;
    }

    static double Median(List<double> values)
    {
        var sorted = values.OrderBy(v => v).ToList();
        var n = sorted.Count;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }
}
