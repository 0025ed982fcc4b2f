// SPDX-License-Identifier: MIT
using Medallion.Threading.Postgres;
using Medallion.Threading.WaitHandles;
using Xunit;

namespace LibWhsem.Tests;

/// <summary>QueryState(): the package's own reading of a name (whsem_query).</summary>
public class StateTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(20);

    [Fact]
    public void ASemaphoresStateShowsItsTicketsAndHolders()
    {
        using var n = new UniqueName("state");
        var semaphore = new WaitHandleDistributedSemaphore(n.Name, 3);
        // Reading opens (creates) the name, as an acquisition would.
        var fresh = semaphore.QueryState();
        Assert.Equal(3, fresh.MaxCount);
        Assert.Equal(3, fresh.FreeCount);
        Assert.Equal(0, fresh.Holders);
        Assert.Equal(1, fresh.Processes);

        using var a = semaphore.Acquire(Long);
        using var b = new WaitHandleDistributedSemaphore(n.Name, 3).Acquire(Long);
        var held = semaphore.QueryState();
        Assert.Equal(1, held.FreeCount);
        Assert.Equal(1, held.Holders); // one process, with two tickets
        Assert.Equal(0, held.Waiters);
    }

    [Fact]
    public void ALocksStateIsThatOfOneTicket()
    {
        using var n = new UniqueName("state-lock");
        var gate = new EventWaitHandleDistributedLock(n.Name);
        using (gate.Acquire(Long))
        {
            var state = gate.QueryState();
            Assert.Equal(1, state.MaxCount);
            Assert.Equal(0, state.FreeCount);
            Assert.Equal(1, state.Holders);
        }
        Assert.Equal(1, gate.QueryState().FreeCount);
    }

    [Fact]
    public void ReadingFailsLikeAnAcquisition()
    {
        using var n = new UniqueName("state-mismatch");
        using var held = new WaitHandleDistributedSemaphore(n.Name, 2).Acquire(Long);
        Assert.Throws<InvalidOperationException>(() => new WaitHandleDistributedSemaphore(n.Name, 5).QueryState());
        Assert.Throws<WaitHandleCannotBeOpenedException>(() => new EventWaitHandleDistributedLock(n.Name).QueryState());
        Assert.Throws<ArgumentNullException>(() => WhsemStateExtensions.QueryState((WaitHandleDistributedSemaphore)null!));
        Assert.Throws<ArgumentNullException>(() => WhsemStateExtensions.QueryState((PostgresDistributedSemaphore)null!));
    }

    // The counters of libwhsem 1.1 (whsem_info's tail), kept by the backend.
    [Fact]
    public async Task TheCountersCountWhatHappened()
    {
        using var n = new UniqueName("state-counters");
        var gate = new EventWaitHandleDistributedLock(n.Name);
        var before = DateTimeOffset.UtcNow.AddMinutes(-1);
        using (gate.Acquire(Long))
        {
            Assert.Null(gate.TryAcquire());                                  // a failed try: not a timeout
            Assert.Null(gate.TryAcquire(TimeSpan.FromMilliseconds(20)));      // a wait that timed out
            using var source = new CancellationTokenSource();
            var canceled = gate.AcquireAsync(Long, source.Token).AsTask();
            Assert.True(Poll.Until(() => gate.QueryState().Waiters == 1));
            source.Cancel();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => canceled);
        }
        await using (await gate.AcquireAsync(Long)) { }

        var state = gate.QueryState();
        Assert.Equal(2, state.Acquisitions);
        Assert.Equal(2, state.Releases);
        // The timed-out wait alone: neither the failed try nor the try that
        // AcquireAsync makes before it waits is a timeout.
        Assert.Equal(1, state.Timeouts);
        Assert.Equal(1, state.Cancellations);
        Assert.Equal(2, state.Waits);                // the timed-out and the cancelled acquisition
        Assert.True(state.WaitTime > TimeSpan.Zero, state.WaitTime.ToString());
        // The first hold lasted through a 20 ms wait; a coarse clock still sees it.
        Assert.True(state.HoldTime > TimeSpan.Zero, state.HoldTime.ToString());
        Assert.NotNull(state.Created);
        Assert.InRange(state.Created!.Value, before, DateTimeOffset.UtcNow.AddMinutes(1));
    }
}
