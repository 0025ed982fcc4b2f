// SPDX-License-Identifier: MIT
// DistributedLock's side of issue 15's comparison; libwhsem's side is
// whsem_bench_pg. pg_compare.sh runs both against the same servers and
// prints the table. Results go to stdout as "RESULT <label> <key> <value>"
// lines, everything else to stderr.
//
//   whsem-dl-compare a|b|c|d --contender pglock|redis|npgsql|whsem [--pg NPGSQL] [--redis HOST:PORT]
//       [--max N] [--expiry S] [--busy-wait MIN_MS:MAX_MS] [--label L]
//       [--iterations N] [--warmup N] [--seconds S] [--procs N] [--kills K]
//       [--restart CMD] [--cap S] [--triers N]
//   whsem-dl-compare side --pg NPGSQL [--reps N] [--iterations N] [--warmup N]
//       LibWhsem's PostgresDistributedSemaphore (max 1) and PostgresDistributedLock
//       in this one process (SideBySide.cs; pg_side_by_side.sh runs it)
using System.Diagnostics;
using System.Globalization;
using Medallion.Threading;
using Npgsql;
using WhsemBench.DlCompare;

var contender = new Contender();
var opt = new Dictionary<string, string>();
var positional = new List<string>();
for (int i = 0; i < args.Length; i++)
{
    if (args[i].StartsWith("--", StringComparison.Ordinal))
    {
        if (i + 1 >= args.Length) return Usage($"{args[i]} needs a value");
        if (Contender.Options.Contains(args[i])) contender.Set(args[i], args[i + 1]);
        else opt[args[i]] = args[i + 1];
        i++;
    }
    else positional.Add(args[i]);
}
if (positional.Count == 0) return Usage("which part?");

double Num(string name, double dflt) =>
    opt.TryGetValue(name, out var v) ? double.Parse(v, CultureInfo.InvariantCulture) : dflt;
string label = opt.GetValueOrDefault("--label", contender.Kind != "" ? contender.Kind : positional[0]);

using (contender)
{
    try
    {
        return positional[0] switch
        {
            "a" => PartA(),
            "b" => PartB(),
            "c" => PartC(),
            "d" => PartD(),
            "side" => SideBySide.Run(contender.Pg, (int)Num("--reps", 5), (int)Num("--iterations", 2000), (int)Num("--warmup", 200), Result),
            "b-worker" => BWorker(int.Parse(positional[1]), positional[2], Shared.Open(positional[3])),
            "c-holder" => CHolder(positional[1], Shared.Open(positional[2])),
            "d-holder" => DHolder(int.Parse(positional[1]), positional[2], Shared.Open(positional[3])),
            "d-trier" => DTrier(positional[1], Shared.Open(positional[2])),
            _ => Usage($"unknown part {positional[0]}"),
        };
    }
    catch (Exception e) when (positional[0].Contains('-'))
    {
        // A child's failure is reported by the orchestrator as missing counts.
        Console.Error.WriteLine($"{positional[0]} ({label}): {e.GetType().Name}: {e.Message}");
        return 1;
    }
}

static int Usage(string why)
{
    Console.Error.WriteLine($"whsem-dl-compare: {why}; see the head of Program.cs");
    return 2;
}

void Result(string key, double value) =>
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"RESULT {label} {key} {value:0.###}"));

string UniqueName(string part) => $"whsem-dlc-{part}-{Environment.ProcessId}-{Guid.NewGuid():N}"[..40];

// ---------------------------------------------------------------- (a)

int PartA()
{
    int n = (int)Num("--iterations", 2000), warm = (int)Num("--warmup", 200);
    var us = new List<double>(n);
    if (contender.Kind == "npgsql")
    {
        // The floor under PostgresDistributedLock: the same two statements
        // on one open connection, nothing around them.
        using var conn = new NpgsqlConnection(contender.Pg);
        conn.Open();
        using var tryLock = new NpgsqlCommand("SELECT pg_try_advisory_lock(@k)", conn);
        using var unlock = new NpgsqlCommand("SELECT pg_advisory_unlock(@k)", conn);
        long key = Random.Shared.NextInt64();
        tryLock.Parameters.AddWithValue("k", key);
        unlock.Parameters.AddWithValue("k", key);
        tryLock.Prepare();
        unlock.Prepare();
        for (int i = -warm; i < n; i++)
        {
            long t0 = Clock.Now();
            if (!(bool)tryLock.ExecuteScalar()!) throw new InvalidOperationException("raw advisory lock not free");
            unlock.ExecuteScalar();
            if (i >= 0) us.Add(Clock.MsSince(t0) * 1e3);
        }
    }
    else
    {
        var tryAcquire = contender.Make(UniqueName("a"));
        for (int i = -warm; i < n; i++)
        {
            long t0 = Clock.Now();
            var h = tryAcquire(TimeSpan.Zero) ?? throw new InvalidOperationException("uncontended try failed");
            h.Dispose();
            if (i >= 0) us.Add(Clock.MsSince(t0) * 1e3);
        }
    }
    us.Sort();
    Result("a_median_us", Stats.Percentile(us, 50));
    Result("a_p99_us", Stats.Percentile(us, 99));
    Console.Error.WriteLine(FormattableString.Invariant(
        $"(a) {label}: try-acquire + release median {Stats.Percentile(us, 50):0} us, p99 {Stats.Percentile(us, 99):0} us ({n} pairs after {warm} warm-up)"));
    return 0;
}

// ---------------------------------------------------------------- (b)

int PartB()
{
    int procs = (int)Num("--procs", 8);
    double seconds = Num("--seconds", 5);
    string name = UniqueName("b");
    using var shm = Shared.Create(procs);
    var children = new List<Process>();
    for (int p = 0; p < procs; p++)
        children.Add(Spawn(["b-worker", p.ToString(), name, shm.Path]));
    if (!WaitFor(() => Volatile.Read(ref shm[Shared.Ready]) == procs, 120))
    {
        Console.Error.WriteLine($"(b) {label}: only {shm[Shared.Ready]} of {procs} workers got ready");
        Reap(children, shm);
        return 1;
    }
    Thread.Sleep(300);
    Volatile.Write(ref shm[Shared.Go], 1);
    long t0 = Clock.Now();
    Thread.Sleep(TimeSpan.FromSeconds(seconds));
    Volatile.Write(ref shm[Shared.Go], 2);
    double elapsed = Clock.MsSince(t0) / 1e3;
    Reap(children, shm);
    var counts = Enumerable.Range(0, procs).Select(p => shm[Shared.Counts + p]).ToList();
    long total = counts.Sum();
    double fairness = counts.Max() > 0 ? (double)counts.Min() / counts.Max() : 0;
    var waits = Stats.Sorted(shm.Samples(procs));
    Result("b_per_s", total / elapsed);
    Result("b_fairness", fairness);
    Result("b_wait_p50_ms", Stats.Percentile(waits, 50));
    Result("b_wait_p99_ms", Stats.Percentile(waits, 99));
    Console.Error.WriteLine(FormattableString.Invariant(
        $"(b) {label}: {procs} processes, max {contender.EffectiveMax}, holding 1 ms: {total / elapsed:0} acquisitions/s, fairness {fairness:0.00} ({counts.Min()} ... {counts.Max()}), wait p50 {Stats.Percentile(waits, 50):0.0} ms p99 {Stats.Percentile(waits, 99):0.0} ms"));
    return 0;
}

int BWorker(int me, string name, Shared shm)
{
    using var _ = shm;
    var tryAcquire = contender.Make(name);
    // Connect and compile before the start, as whsem_bench_pg's workers
    // open (and connect) before theirs.
    tryAcquire(TimeSpan.Zero)?.Dispose();
    Interlocked.Increment(ref shm[Shared.Ready]);
    while (Volatile.Read(ref shm[Shared.Go]) == 0) Thread.Sleep(1);
    while (Volatile.Read(ref shm[Shared.Go]) == 1)
    {
        long t0 = Clock.Now();
        var h = tryAcquire(TimeSpan.FromSeconds(1));
        if (h == null) continue;
        double waited = Clock.MsSince(t0);
        Thread.Sleep(1);
        if (Volatile.Read(ref shm[Shared.Go]) == 1)
        {
            shm[Shared.Counts + me]++;
            shm.AddSample(me, waited);
        }
        h.Dispose();
    }
    return 0;
}

// ---------------------------------------------------------------- (c)

int PartC()
{
    int kills = (int)Num("--kills", 20);
    double cap = Num("--cap", 60);
    var ms = new List<double>();
    int capped = 0;
    using var shm = Shared.Create(1);
    {
        // The waiting path compiled and a first connection open before the
        // first kill, as whsem_bench_pg does: a wait that times out behind
        // a ticket of our own.
        string warm = UniqueName("c");
        using var mine = contender.Make(warm)(TimeSpan.Zero);
        contender.Make(warm)(TimeSpan.FromMilliseconds(50))?.Dispose();
    }
    for (int r = 0; r < kills; r++)
    {
        string name = UniqueName("c");
        Volatile.Write(ref shm[Shared.Held], 0);
        var holder = Spawn(["c-holder", name, shm.Path]);
        if (!WaitFor(() => Volatile.Read(ref shm[Shared.Held]) != 0 || holder.HasExited, 60) || holder.HasExited)
        {
            Console.Error.WriteLine($"(c) {label}: the holder did not get its ticket");
            KillQuietly(holder);
            return 1;
        }
        var tryAcquire = contender.Make(name);
        var waiter = Task.Run(() => tryAcquire(TimeSpan.FromSeconds(cap)));
        Thread.Sleep(100); // queued in the server, or busy-waiting
        long t0 = Clock.Now();
        holder.Kill();
        var h = waiter.GetAwaiter().GetResult();
        double took = Clock.MsSince(t0);
        holder.WaitForExit();
        holder.Dispose();
        h?.Dispose();
        if (h == null) { capped++; took = cap * 1e3; }
        ms.Add(took);
        Console.Error.WriteLine(FormattableString.Invariant($"(c) {label}: kill {r + 1}/{kills}: {took:0.0} ms"));
    }
    ms.Sort();
    Result("c_p50_ms", Stats.Percentile(ms, 50));
    Result("c_p99_ms", Stats.Percentile(ms, 99));
    Result("c_max_ms", ms[^1]);
    Result("c_kills", kills);
    Result("c_capped", capped);
    return 0;
}

int CHolder(string name, Shared shm)
{
    using var _ = shm;
    var h = contender.Make(name)(TimeSpan.FromSeconds(30));
    if (h == null) return 1;
    Volatile.Write(ref shm[Shared.Held], 1);
    Thread.Sleep(Timeout.Infinite); // until SIGKILL
    GC.KeepAlive(h);
    return 0;
}

// ---------------------------------------------------------------- (d)

int PartD()
{
    int max = contender.EffectiveMax, triers = (int)Num("--triers", 4);
    double cap = Num("--cap", 30);
    string restart = opt.GetValueOrDefault("--restart") ?? throw new ArgumentException("(d) needs --restart CMD");
    string name = UniqueName("d");
    using var shm = Shared.Create(1);
    var holders = new List<Process>();
    for (int i = 0; i < max; i++)
    {
        holders.Add(Spawn(["d-holder", i.ToString(), name, shm.Path]));
        int want = i + 1;
        if (!WaitFor(() => Volatile.Read(ref shm[Shared.Holders]) >= want, 60))
        {
            Console.Error.WriteLine($"(d) {label}: holder {i} did not get its ticket");
            Reap(holders, shm);
            return 1;
        }
    }
    var children = new List<Process>(holders);
    for (int i = 0; i < triers; i++) children.Add(Spawn(["d-trier", name, shm.Path]));
    WaitFor(() => Volatile.Read(ref shm[Shared.Ready]) == triers, 60);
    Thread.Sleep(500); // the triers are trying, and failing, before the restart

    // The sampler sees how long the count of believed holders exceeds the
    // max; MaxHolders (kept exactly by every entering process) catches
    // what a sample could miss.
    double overMs = 0, firstOver = -1, lastOver = -1;
    bool sampling = true;
    long t0 = 0;
    var sampler = new Thread(() =>
    {
        long last = Clock.Now();
        while (Volatile.Read(ref sampling))
        {
            long now = Clock.Now();
            if (Volatile.Read(ref shm[Shared.Holders]) > max)
            {
                overMs += Clock.Ms(last, now);
                double at = Clock.Ms(t0, now);
                if (firstOver < 0) firstOver = at;
                lastOver = at;
            }
            last = now;
            Thread.Sleep(1);
        }
    }) { IsBackground = true, Priority = ThreadPriority.AboveNormal };

    t0 = Clock.Now();
    Volatile.Write(ref shm[Shared.RestartAt], t0);
    sampler.Start();
    var sh = Process.Start(new ProcessStartInfo("/bin/sh", ["-c", restart]) { UseShellExecute = false })!;
    sh.WaitForExit();
    double restartMs = Clock.MsSince(t0);
    if (sh.ExitCode != 0) Console.Error.WriteLine($"(d) {label}: the restart command exited {sh.ExitCode}");

    bool AllTold() => Enumerable.Range(0, max).All(i => Volatile.Read(ref shm[Shared.Told + i]) != 0);
    // Watch until every old holder was told and acquisitions have resumed
    // for a while (over-admission can only start once they have), or the cap.
    WaitFor(() =>
    {
        long first = Volatile.Read(ref shm[Shared.FirstAfter]);
        return AllTold() && first != 0 && Clock.MsSince(first) > 1000;
    }, cap);
    Volatile.Write(ref sampling, false);
    sampler.Join();
    Volatile.Write(ref shm[Shared.Go], 2);
    Reap(children, shm);

    var told = Enumerable.Range(0, max).Select(i => shm[Shared.Told + i])
        .Select(t => t == 0 ? double.NaN : Clock.Ms(t0, t)).ToList();
    long firstAfter = shm[Shared.FirstAfter];
    Result("d_max_holders", shm[Shared.MaxHolders]);
    Result("d_over_ms", overMs);
    Result("d_over_window_ms", firstOver < 0 ? 0 : lastOver - firstOver);
    Result("d_told_all_ms", told.Any(double.IsNaN) ? -1 : told.Max());
    Result("d_told_first_ms", told.All(double.IsNaN) ? -1 : told.Where(t => !double.IsNaN(t)).Min());
    Result("d_resumed_ms", firstAfter == 0 ? -1 : Clock.Ms(t0, firstAfter));
    Result("d_restart_ms", restartMs);
    Result("d_cap_s", cap);
    Console.Error.WriteLine(FormattableString.Invariant(
        $"(d) {label}: restart took {restartMs:0} ms; max holders {shm[Shared.MaxHolders]} (max {max}); over the max for {overMs:0} ms (from {firstOver:0} to {lastOver:0} ms); old holders told at {string.Join(", ", told.Select(t => double.IsNaN(t) ? "never" : t.ToString("0")))} ms; first acquisition after the restart at {(firstAfter == 0 ? "none" : Clock.Ms(t0, firstAfter).ToString("0"))} ms"));
    return 0;
}

int DHolder(int me, string name, Shared shm)
{
    using var _ = shm;
    var h = contender.Make(name)(TimeSpan.FromSeconds(30));
    if (h == null) return 1;
    shm.EnterHolder();
    using var reg = h.HandleLostToken.Register(() =>
    {
        Volatile.Write(ref shm[Shared.Told + me], Clock.Now());
        shm.LeaveHolder();
    });
    if (!h.HandleLostToken.CanBeCanceled) Console.Error.WriteLine($"(d) {label}: HandleLostToken cannot be canceled");
    // The holder keeps believing it holds until it is told otherwise.
    while (Volatile.Read(ref shm[Shared.Go]) != 2) Thread.Sleep(10);
    try { h.Dispose(); } catch (Exception) { /* lost with the old server */ }
    return 0;
}

int DTrier(string name, Shared shm)
{
    using var _ = shm;
    var tryAcquire = contender.Make(name);
    Interlocked.Increment(ref shm[Shared.Ready]);
    while (Volatile.Read(ref shm[Shared.Go]) != 2)
    {
        IDistributedSynchronizationHandle? h;
        long t0 = Clock.Now();
        try { h = tryAcquire(TimeSpan.FromMilliseconds(500)); }
        catch (Exception) { Thread.Sleep(10); continue; } // the server is away
        if (h == null) continue;
        shm.EnterHolder();
        long restartAt = Volatile.Read(ref shm[Shared.RestartAt]);
        if (restartAt != 0 && t0 > restartAt)
            Interlocked.CompareExchange(ref shm[Shared.FirstAfter], Clock.Now(), 0);
        Thread.Sleep(2);
        shm.LeaveHolder();
        try { h.Dispose(); } catch (Exception) { /* the server went away meanwhile */ }
    }
    return 0;
}

// ---------------------------------------------------------------- processes

Process Spawn(string[] childArgs)
{
    var psi = new ProcessStartInfo(Environment.ProcessPath!) { UseShellExecute = false };
    // Run as "dotnet whsem-dl-compare.dll": the children need the dll too.
    if (Path.GetFileNameWithoutExtension(Environment.ProcessPath) == "dotnet")
        psi.ArgumentList.Add(typeof(Contender).Assembly.Location);
    foreach (var a in childArgs) psi.ArgumentList.Add(a);
    foreach (var a in contender.Args()) psi.ArgumentList.Add(a);
    psi.ArgumentList.Add("--label");
    psi.ArgumentList.Add(label);
    return Process.Start(psi)!;
}

static bool WaitFor(Func<bool> done, double seconds)
{
    var sw = Stopwatch.StartNew();
    while (!done())
    {
        if (sw.Elapsed.TotalSeconds > seconds) return false;
        Thread.Sleep(5);
    }
    return true;
}

static void KillQuietly(Process p)
{
    try { if (!p.HasExited) p.Kill(); } catch (InvalidOperationException) { }
    p.WaitForExit();
}

static void Reap(List<Process> children, Shared shm)
{
    Volatile.Write(ref shm[Shared.Go], 2);
    var sw = Stopwatch.StartNew();
    foreach (var c in children)
    {
        // A worker inside a busy-wait of up to 0.8 s, or a release to a
        // server that went away, may take a moment; one stuck longer is killed.
        if (!c.WaitForExit(TimeSpan.FromSeconds(Math.Max(1, 30 - sw.Elapsed.TotalSeconds)))) KillQuietly(c);
        c.Dispose();
    }
}
