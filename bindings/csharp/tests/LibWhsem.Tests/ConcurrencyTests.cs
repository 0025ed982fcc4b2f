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

    [Fact]
    public void DrainAndRefillAcrossTwoInstances()
    {
        using var n = new UniqueName("drain");
        var semaphore = new WaitHandleDistributedSemaphore(n.Name, 4);
        var semaphore2 = new WaitHandleDistributedSemaphore(n.Name, 4);

        var handles = new List<IDisposable> { semaphore.Acquire(Long) };
        semaphore2.Acquire().Dispose();
        while (handles.Count < 4) { handles.Add(semaphore.Acquire(Long)); }

        Assert.Null(semaphore2.TryAcquire());
        Assert.Null(semaphore.TryAcquire());

        handles[0].Dispose();
        using (var refilled = semaphore2.TryAcquire(Long))
        {
            Assert.NotNull(refilled);
            Assert.Null(semaphore.TryAcquire());
        }
        handles.ForEach(h => h.Dispose());
        // All four are back.
        var again = Enumerable.Range(0, 4).Select(_ => semaphore2.TryAcquire()).ToList();
        Assert.All(again, Assert.NotNull);
        again.ForEach(h => h!.Dispose());
    }

    [Fact]
    public void IntMaxValueTickets()
    {
        using var n = new UniqueName("many");
        var name = n.Track($"{n.Name}-s{new string('o', 1000)} many tickets!");
        var semaphore = new WaitHandleDistributedSemaphore(name, int.MaxValue);
        var handles = Enumerable.Range(0, 100).Select(_ => semaphore.Acquire(Long)).ToList();
        Assert.Equal(int.MaxValue, semaphore.MaxCount);
        handles.ForEach(h => h.Dispose());
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
