// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using LibWhsem.Interop;
using Medallion.Threading.WaitHandles;
using Xunit;

namespace LibWhsem.Tests;

// Each ticket is guarded by a finalizable slot that is reused, and libwhsem,
// not an interlocked exchange, decides which Dispose released the ticket
// (Interop/TicketSlot.cs). Reuse must never hand a slot to a second handle
// while the first can still reach it, nor lend one whose finalizer the
// garbage collector has already scheduled.
public class TicketSlotTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(20);

    [Fact]
    public void ADisposedHandlesSlotIsLentAgainAndAHeldOneIsNot()
    {
        using var n = new UniqueName("slot-reuse");
        var semaphore = new WaitHandleDistributedSemaphore(n.Name, 3);
        var first = semaphore.Acquire(Long);
        var slot = first.Slot;
        Assert.NotNull(slot);
        first.Dispose();
        Assert.Null(first.Slot);

        using var second = semaphore.Acquire(Long);
        Assert.Same(slot, second.Slot);
        using var third = semaphore.Acquire(Long);
        Assert.NotSame(second.Slot, third.Slot);

        // The stale handle holds nothing that the new holders use.
        first.Dispose();
        using var fourth = semaphore.TryAcquire();
        Assert.NotNull(fourth);
        Assert.Null(semaphore.TryAcquire());
    }

    [Fact]
    public void APairAllocatesOnlyTheHandle()
    {
        using var n = new UniqueName("slot-alloc");
        var semaphore = new WaitHandleDistributedSemaphore(n.Name, 1);
        for (var i = 0; i < 100; i++) { semaphore.TryAcquire()!.Dispose(); }

        const int pairs = 10_000;
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < pairs; i++) { semaphore.TryAcquire()!.Dispose(); }
        var perPair = (double)(GC.GetAllocatedBytesForCurrentThread() - before) / pairs;

        // The handle: one field and the object header. A slot per pair
        // (finalizable, with its weak reference) would more than double it.
        Assert.True(perPair <= 24, $"{perPair:F1} bytes allocated per acquire + dispose");
    }

    [Fact]
    public void AReleaseThatLostGivesNothingBack()
    {
        using var n = new UniqueName("slot-lost");
        var semaphore = new WaitHandleDistributedSemaphore(n.Name, 1);
        var handle = semaphore.Acquire(Long);
        var slot = handle.Slot!;
        var ticket = slot.Ticket;
        handle.Dispose();
        // Take the slot out of this thread's cache, as its next holder would.
        var lent = TicketSlot.Rent();
        Assert.Same(slot, lent);

        // A second Dispose of the handle that had passed its check before
        // the first one cleared it: libwhsem refuses the stale ticket.
        slot.Release(ticket);
        var next = TicketSlot.Rent();
        Assert.NotSame(slot, next);
        next.Return();
        lent.Return();
    }

    [Fact]
    public void RacingDisposesReleaseOnceAndLendTheSlotOnce()
    {
        // What racing Disposes of one handle do once they have all passed
        // its check. Each worker enters the race with an empty cache (it
        // holds the slot it had), so a slot given back by two racers would
        // be cached by both and lent to both by their next acquisition.
        const int threads = 4, rounds = 200, maxCount = 1 + 2 * threads;
        using var n = new UniqueName("slot-race");
        var semaphore = new WaitHandleDistributedSemaphore(n.Name, maxCount);
        (TicketSlot? Slot, ulong Ticket) raced = default;
        var held = new WaitHandleDistributedSemaphoreHandle?[2 * threads];
        using var phase = new Barrier(threads + 1);
        var failures = new System.Collections.Concurrent.ConcurrentQueue<Exception>();

        void Step()
        {
            if (!phase.SignalAndWait(Long)) { throw new TimeoutException("a participant is gone"); }
        }

        var workers = Enumerable.Range(0, threads).Select(i => new Thread(() =>
        {
            try
            {
                for (var round = 0; round < rounds; round++)
                {
                    Step();
                    held[2 * i] = semaphore.Acquire(Long);
                    Step();
                    raced.Slot!.Release(raced.Ticket);
                    Step();
                    held[2 * i + 1] = semaphore.Acquire(Long);
                    Step();
                    Step();
                    held[2 * i]!.Dispose();
                    held[2 * i + 1]!.Dispose();
                }
            }
            catch (Exception e)
            {
                failures.Enqueue(e);
            }
        })).ToList();
        workers.ForEach(w => w.Start());

        try
        {
            for (var round = 0; round < rounds; round++)
            {
                // The handle itself is left alone: once its slot is lent
                // again, dropping it releases nothing.
                var slot = semaphore.Acquire(Long).Slot!;
                raced = (slot, slot.Ticket);
                Step(); // each worker takes a ticket and keeps it
                Step(); // they all release the raced ticket at once
                Step(); // each takes a second ticket
                Step(); // all hold two
                var slots = held.Select(h => h!.Slot).ToList();
                Assert.All(slots, Assert.NotNull);
                Assert.Equal(held.Length, slots.Distinct(ReferenceEqualityComparer.Instance).Count());
                // The raced ticket was released once: one of maxCount is left.
                using (var last = semaphore.TryAcquire())
                {
                    Assert.NotNull(last);
                    Assert.Null(semaphore.TryAcquire());
                }
                Step(); // the workers dispose theirs
            }
        }
        catch (Exception e) when (!failures.IsEmpty)
        {
            throw new AggregateException(failures.Prepend(e));
        }
        finally
        {
            // Workers left waiting at the barrier give up after Long.
            workers.ForEach(w => w.Join(Long * 2));
        }
        Assert.Empty(failures);
        var all = Enumerable.Range(0, maxCount).Select(_ => semaphore.TryAcquire()).ToList();
        Assert.All(all, Assert.NotNull);
        Assert.Null(semaphore.TryAcquire());
        all.ForEach(h => h!.Dispose());
    }

    [Fact]
    public void ADroppedHandleWithARecycledSlotStillReleasesItsTicket()
    {
        using var n = new UniqueName("slot-drop");
        var semaphore = new WaitHandleDistributedSemaphore(n.Name, 1, TimeSpan.FromSeconds(.3));
        var recycled = CycleAndPeek(semaphore);
        var weak = Drop(semaphore, recycled, out var gotTheRecycledSlot);
        Assert.True(gotTheRecycledSlot);
        Assert.True(Poll.CollectingUntil(() => !weak.IsAlive));
        using var again = semaphore.TryAcquire(Long);
        Assert.NotNull(again);
    }

    // Only weak references leave these two: a strong one to the slot would
    // keep it from being finalized.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static WeakReference CycleAndPeek(WaitHandleDistributedSemaphore semaphore)
    {
        TicketSlot? last = null;
        for (var i = 0; i < 1000; i++)
        {
            var handle = semaphore.Acquire(Long);
            last = handle.Slot;
            handle.Dispose();
        }
        return new WeakReference(last);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static WeakReference Drop(WaitHandleDistributedSemaphore semaphore, WeakReference recycled, out bool gotIt)
    {
        var handle = semaphore.Acquire(Long);
        gotIt = ReferenceEquals(handle.Slot, recycled.Target);
        return new WeakReference(handle);
    }

    [Fact]
    public void AHandleDisposedByAFinalizerDoesNotLendItsSlotAgain()
    {
        using var n = new UniqueName("slot-finalizer");
        var semaphore = new WaitHandleDistributedSemaphore(n.Name, 1);
        DisposesInItsFinalizer.Abandon(semaphore);
        Assert.True(Poll.CollectingUntil(() => Volatile.Read(ref DisposesInItsFinalizer.s_released) != null));
        // Its slot was unreachable along with the object that disposed it,
        // so the slot's own finalizer was scheduled too.
        Assert.NotSame(DisposesInItsFinalizer.s_released, DisposesInItsFinalizer.s_lentNext);
        using var again = semaphore.TryAcquire(Long);
        Assert.NotNull(again);
        Assert.Null(semaphore.TryAcquire());
    }

    private sealed class DisposesInItsFinalizer
    {
        internal static TicketSlot? s_released;
        internal static TicketSlot? s_lentNext;
        private readonly WaitHandleDistributedSemaphoreHandle _handle;

        private DisposesInItsFinalizer(WaitHandleDistributedSemaphoreHandle handle) => _handle = handle;

        [MethodImpl(MethodImplOptions.NoInlining)]
        internal static void Abandon(WaitHandleDistributedSemaphore semaphore) =>
            _ = new DisposesInItsFinalizer(semaphore.Acquire(Long));

        ~DisposesInItsFinalizer()
        {
            var slot = _handle.Slot;
            _handle.Dispose();
            var next = TicketSlot.Rent();
            next.Return();
            s_lentNext = next;
            Volatile.Write(ref s_released, slot);
        }
    }
}
