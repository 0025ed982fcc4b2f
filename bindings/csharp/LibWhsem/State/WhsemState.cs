// SPDX-License-Identifier: MIT
using LibWhsem.Interop;

namespace LibWhsem;

/// <summary>
/// One reading of a libwhsem name, as all the processes that use it see it
/// (libwhsem's <c>whsem_query</c>, the numbers <c>whsem status</c> prints).
/// DistributedLock has nothing like it, so it lives in this package's own
/// namespace; <see cref="WhsemStateExtensions"/> takes one.
/// </summary>
/// <remarks>
/// The counters run from the creation of the name and count what every
/// process using libwhsem 1.1 or later did through it. A library that does
/// not keep them yet reports 0.
/// </remarks>
public readonly struct WhsemState
{
    internal WhsemState(in whsem_info info)
    {
        MaxCount = info.max_count;
        FreeCount = info.free_count;
        Waiters = checked((int)info.waiters);
        Processes = checked((int)info.processes);
        Holders = checked((int)info.holders);
        Recoveries = (long)info.recoveries;
        Acquisitions = (long)info.acquisitions;
        Timeouts = (long)info.timeouts;
        Cancellations = (long)info.cancellations;
        Waits = (long)info.waits;
        WaitTime = FromNanoseconds(info.wait_ns);
        Releases = (long)info.releases;
        HoldTime = FromNanoseconds(info.hold_ns);
        Created = info.created_unix_ms > 0 ? DateTimeOffset.FromUnixTimeMilliseconds(info.created_unix_ms) : null;
    }

    /// <summary>How many tickets exist: 1 for a lock.</summary>
    public int MaxCount { get; }

    /// <summary>Tickets that nobody held at the time of the reading.</summary>
    public int FreeCount { get; }

    /// <summary>Acquisitions that were waiting, in all processes together.</summary>
    public int Waiters { get; }

    /// <summary>Processes that had the name open.</summary>
    public int Processes { get; }

    /// <summary>Processes that held one ticket or more.</summary>
    public int Holders { get; }

    /// <summary>
    /// How often libwhsem cleaned up after a process that died: took back its
    /// tickets, or repaired the state it was changing. Always 0 on PostgreSQL,
    /// where the server does that itself.
    /// </summary>
    public long Recoveries { get; }

    /// <summary>Tickets handed out so far.</summary>
    public long Acquisitions { get; }

    /// <summary>Acquisitions that waited and gave up because their timeout passed; a single try that finds no ticket is not one.</summary>
    public long Timeouts { get; }

    /// <summary>Acquisitions that a <see cref="CancellationToken"/> ended.</summary>
    public long Cancellations { get; }

    /// <summary>Acquisitions that found no free ticket and had to wait, however that ended.</summary>
    public long Waits { get; }

    /// <summary>The time all of <see cref="Waits"/> spent waiting, added up.</summary>
    public TimeSpan WaitTime { get; }

    /// <summary>Tickets given back, by their holder or taken back from a process that ended.</summary>
    public long Releases { get; }

    /// <summary>
    /// How long the <see cref="Releases"/> tickets were held, added up. libwhsem
    /// reads a coarse clock here, so the sum is right over many holds but not
    /// to the microsecond for a single one.
    /// </summary>
    public TimeSpan HoldTime { get; }

    /// <summary>When the name was created, or null if the library does not record it.</summary>
    public DateTimeOffset? Created { get; }

    private static TimeSpan FromNanoseconds(ulong ns) => TimeSpan.FromTicks((long)(ns / 100));
}
