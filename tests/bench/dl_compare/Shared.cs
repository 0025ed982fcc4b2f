// SPDX-License-Identifier: MIT
using System.Diagnostics;
using System.IO.MemoryMappedFiles;

namespace WhsemBench.DlCompare;

/// <summary>
/// A file in /dev/shm mapped by the orchestrator and every child process:
/// the start/stop flag, the per-process counts and wait samples of (b), the
/// holder count of (d). The children are separate processes (a semaphore
/// shared by threads of one process would prove nothing), so they report
/// through memory rather than through pipes that the timed loops would
/// have to service.
/// </summary>
internal sealed unsafe class Shared : IDisposable
{
    public const int Go = 0;            // 0: get ready, 1: run, 2: stop
    public const int Holders = 1;       // (d): processes that believe they hold a ticket now
    public const int MaxHolders = 2;    // (d): the most Holders ever was
    public const int Ready = 3;         // children ready to start
    public const int RestartAt = 4;     // (d): timestamp of the restart's start, 0 before
    public const int FirstAfter = 5;    // (d): first acquisition that began after the restart
    public const int Held = 6;          // (c): the holder has its ticket
    public const int Counts = 16;       // (b): acquisitions per process, then sample counts
    public const int SampleCounts = 48;
    public const int Told = 80;         // (d): when each old holder was told, 0 before
    public const int Slots = 32;

    public const int HeaderLongs = 1024;
    public const int SampleCap = 1 << 16;

    private readonly MemoryMappedFile _file;
    private readonly MemoryMappedViewAccessor _view;
    private readonly byte* _base;
    private readonly string? _owned;

    private Shared(string path, long size, bool create)
    {
        if (create)
        {
            using var fs = new FileStream(path, FileMode.CreateNew, FileAccess.ReadWrite);
            fs.SetLength(size);
        }
        _file = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.ReadWrite);
        _view = _file.CreateViewAccessor(0, 0, MemoryMappedFileAccess.ReadWrite);
        byte* p = null;
        _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        _base = p + _view.PointerOffset;
        _owned = create ? path : null;
    }

    public static Shared Create(int workers) =>
        new($"/dev/shm/whsem-dl-compare-{Environment.ProcessId}-{Guid.NewGuid():N}",
            HeaderLongs * 8L + (long)Math.Max(workers, 1) * SampleCap * 4, create: true);

    public static Shared Open(string path) => new(path, 0, create: false);

    public string Path => _owned ?? throw new InvalidOperationException("only the creator passes the path on");

    public ref long this[int slot] => ref ((long*)_base)[slot];

    /// <summary>Atomic increment that also keeps MaxHolders up to date.</summary>
    public void EnterHolder()
    {
        long now = Interlocked.Increment(ref this[Holders]);
        long seen = Volatile.Read(ref this[MaxHolders]);
        while (now > seen)
        {
            long was = Interlocked.CompareExchange(ref this[MaxHolders], now, seen);
            if (was == seen) break;
            seen = was;
        }
    }

    public void LeaveHolder() => Interlocked.Decrement(ref this[Holders]);

    public void AddSample(int worker, double ms)
    {
        long n = this[SampleCounts + worker];
        if (n >= SampleCap) return;
        ((float*)(_base + HeaderLongs * 8))[(long)worker * SampleCap + n] = (float)ms;
        Volatile.Write(ref this[SampleCounts + worker], n + 1);
    }

    public List<double> Samples(int workers)
    {
        var all = new List<double>();
        for (int w = 0; w < workers; w++)
        {
            long n = Volatile.Read(ref this[SampleCounts + w]);
            float* s = (float*)(_base + HeaderLongs * 8) + (long)w * SampleCap;
            for (long i = 0; i < n; i++) all.Add(s[i]);
        }
        return all;
    }

    public void Dispose()
    {
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _file.Dispose();
        if (_owned != null) File.Delete(_owned);
    }
}

internal static class Clock
{
    /// <summary>CLOCK_MONOTONIC on Linux: comparable between processes.</summary>
    public static long Now() => Stopwatch.GetTimestamp();

    public static double Ms(long from, long to) => (to - from) * 1e3 / Stopwatch.Frequency;

    public static double MsSince(long from) => Ms(from, Now());
}

internal static class Stats
{
    public static double Percentile(IReadOnlyList<double> sorted, double p)
    {
        if (sorted.Count == 0) return double.NaN;
        int i = (int)Math.Ceiling(p / 100.0 * sorted.Count) - 1;
        return sorted[Math.Clamp(i, 0, sorted.Count - 1)];
    }

    public static List<double> Sorted(IEnumerable<double> xs)
    {
        var l = xs.ToList();
        l.Sort();
        return l;
    }
}
