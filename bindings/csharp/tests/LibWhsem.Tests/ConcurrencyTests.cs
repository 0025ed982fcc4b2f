// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using Medallion.Threading.WaitHandles;
using Xunit;

namespace LibWhsem.Tests;

public class ConcurrencyTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(20);

    // That threads, tasks and processes never hold more than the max count
    // is the library's to prove (tests/library Semantics.ThreadsNeverExceedMaxCount,
    // MultiProcess.*, and xlang_chaos). What the binding adds is a ticket slot
    // per handle, rented from a per-thread cache and given back by whichever
    // thread disposes the handle: here tickets granted through libwhsem's
    // callback are disposed on pool threads, and with a max count of 1 an
    // overlap would mean that the binding released a ticket other than the
    // disposed handle's own.
    [Fact]
    public async Task AsyncAcquisitionsAsALockAreExclusive()
    {
        using var n = new UniqueName("lock");
        var counter = 0;
        var tasks = Enumerable.Range(0, 100).Select(_ => Task.Run(async () =>
        {
            var semaphore = new WaitHandleDistributedSemaphore(n.Name, 1);
            await using (await semaphore.AcquireAsync(TimeSpan.FromSeconds(60)))
            {
                Assert.Equal(1, Interlocked.Increment(ref counter));
                await Task.Delay(2);
                return Interlocked.Decrement(ref counter);
            }
        })).ToList();
        var all = Task.WhenAll(tasks);
        Assert.Same(all, await Task.WhenAny(all, Task.Delay(TimeSpan.FromSeconds(120))));
        Assert.All(tasks, t => Assert.Equal(0, t.Result));
    }

    // Two instances of one name draw on one pool: whatever one takes, the
    // other cannot, and whatever one gives back, the other can take.
    [Fact]
    public void DrainAndRefillAcrossTwoInstances()
    {
        using var n = new UniqueName("drain");
        var left = new WaitHandleDistributedSemaphore(n.Name, 4);
        var right = new WaitHandleDistributedSemaphore(n.Name, 4);

        var held = new Stack<WaitHandleDistributedSemaphoreHandle>();
        for (var i = 0; i < 4; i++) { held.Push((i % 2 == 0 ? left : right).Acquire(Long)); }
        Assert.Equal(0, left.QueryState().FreeCount);
        Assert.Null(left.TryAcquire());
        Assert.Null(right.TryAcquire());

        held.Pop().Dispose(); // taken through right
        var refill = left.TryAcquire(Long);
        Assert.NotNull(refill);
        Assert.Null(right.TryAcquire());
        held.Push(refill!);

        while (held.Count > 0) { held.Pop().Dispose(); }
        Assert.Equal(4, right.QueryState().FreeCount);
    }

    [Fact]
    public void IntMaxValueTickets()
    {
        using var n = new UniqueName("max-int");
        var instances = Enumerable.Range(0, 4).Select(_ => new WaitHandleDistributedSemaphore(n.Name, int.MaxValue)).ToList();
        var held = Enumerable.Range(0, 1000).Select(i => instances[i % 4].Acquire(TimeSpan.Zero)).ToList();
        var state = instances[0].QueryState();
        Assert.Equal(int.MaxValue, state.MaxCount);
        Assert.Equal(int.MaxValue - 1000, state.FreeCount);
        held.ForEach(h => h.Dispose());
        Assert.Equal(int.MaxValue, instances[3].QueryState().FreeCount);
    }

    [Fact]
    public void AGarbageCollectedHandleReleasesItsTicket()
    {
        using var n = new UniqueName("gc");
        var semaphore = new WaitHandleDistributedSemaphore(n.Name, 1, TimeSpan.FromSeconds(.3));
        var weak = Abandon(semaphore);
        Assert.True(Poll.CollectingUntil(() => !weak.IsAlive));
        using var handle = semaphore.TryAcquire(Long);
        Assert.NotNull(handle);

        // The same for a ticket granted through the asynchronous path.
        var weakAsync = AbandonViaCallback(semaphore, handle!);
        Assert.True(Poll.CollectingUntil(() => !weakAsync.IsAlive));
        using var again = semaphore.TryAcquire(Long);
        Assert.NotNull(again);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static WeakReference Abandon(WaitHandleDistributedSemaphore semaphore) => new(semaphore.Acquire(Long));

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static WeakReference AbandonViaCallback(WaitHandleDistributedSemaphore semaphore, IDisposable holder)
    {
        // Pending while the only ticket is held, so the ticket it gets comes
        // through libwhsem's callback.
        var pending = semaphore.AcquireAsync(Long).AsTask();
        Assert.False(pending.IsCompleted);
        holder.Dispose();
        Assert.True(pending.Wait(Long));
        return new WeakReference(pending.Result);
    }
}
