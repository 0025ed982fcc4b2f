// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using Medallion.Threading;
using Medallion.Threading.WaitHandles;
using Xunit;

namespace LibWhsem.Tests;

/// <summary>
/// EventWaitHandleDistributedLock: the semaphore tests' conventions again,
/// and what only a lock has (no re-entry, its own timeout message, its
/// meeting with a semaphore of the same name).
/// </summary>
public class LockTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task OneHolderAtATimeAndNoReentry()
    {
        using var n = new UniqueName("lock-basic");
        var gate = new EventWaitHandleDistributedLock(n.Name);
        using (var held = gate.TryAcquire())
        {
            Assert.NotNull(held);
            // Not re-entrant, neither from this thread nor through another instance.
            Assert.Null(gate.TryAcquire());
            Assert.Null(await gate.TryAcquireAsync());
            Assert.Null(new EventWaitHandleDistributedLock(n.Name).TryAcquire(TimeSpan.FromMilliseconds(50)));
        }
        await using (var held = await gate.AcquireAsync(Long)) { Assert.NotNull(held); }
        using (gate.Acquire()) { }
        Assert.NotNull(await gate.TryAcquireAsync(Long));
    }

    [Fact]
    public async Task TimeoutsGiveNullOrTimeoutException()
    {
        using var n = new UniqueName("lock-timeout");
        await SemaphoreContract.TimeoutsGiveNullOrTimeoutException(
            new LockAsSemaphore(new EventWaitHandleDistributedLock(n.Name)), new LockAsSemaphore(new EventWaitHandleDistributedLock(n.Name)));
    }

    [Fact]
    public async Task TheTimeoutExceptionNamesALock()
    {
        using var n = new UniqueName("lock-timeout-message");
        var gate = new EventWaitHandleDistributedLock(n.Name);
        using var held = gate.Acquire(Long);
        Assert.Equal("Timeout exceeded when trying to acquire the lock", Assert.Throws<TimeoutException>(() => gate.Acquire(TimeSpan.Zero)).Message);
        var waited = await Assert.ThrowsAsync<TimeoutException>(async () => await gate.AcquireAsync(TimeSpan.FromMilliseconds(50)));
        Assert.Equal("Timeout exceeded when trying to acquire the lock", waited.Message);
        // A semaphore keeps its own wording.
        var semaphore = new WaitHandleDistributedSemaphore(n.Name, 1);
        Assert.Equal("Timeout exceeded when trying to acquire the semaphore", Assert.Throws<TimeoutException>(() => semaphore.Acquire(TimeSpan.Zero)).Message);
    }

    [Fact]
    public async Task AlreadyCanceledThrowsForSyncAndCancelsTheTaskForAsync()
    {
        using var n = new UniqueName("lock-precanceled");
        await SemaphoreContract.AlreadyCanceledThrowsForSyncAndCancelsTheTaskForAsync(new LockAsSemaphore(new EventWaitHandleDistributedLock(n.Name)));
    }

    [Fact]
    public async Task CancelingAWaitEndsIt()
    {
        using var n = new UniqueName("lock-cancel");
        var gate = new EventWaitHandleDistributedLock(n.Name);
        using var held = gate.Acquire(Long);
        using var source = new CancellationTokenSource();
        var sync = Task.Run(() => gate.Acquire(Long, source.Token));
        var async = gate.AcquireAsync(Long, source.Token).AsTask();
        Assert.False(async.Wait(TimeSpan.FromMilliseconds(100)));
        source.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => sync);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => async);
    }

    [Fact]
    public void BadTimeoutsAreOutOfRange()
    {
        var gate = new EventWaitHandleDistributedLock("never-opened");
        Assert.Throws<ArgumentOutOfRangeException>("timeout", () => gate.Acquire(TimeSpan.FromSeconds(-2)));
        Assert.Throws<ArgumentOutOfRangeException>("timeout", () => gate.TryAcquire(TimeSpan.MaxValue));
        Assert.Throws<ArgumentOutOfRangeException>("timeout", () => { _ = gate.AcquireAsync(TimeSpan.FromMilliseconds(-2)); });
        Assert.Throws<ArgumentOutOfRangeException>("timeout", () => { _ = gate.TryAcquireAsync(TimeSpan.MinValue); });
    }

    [Fact]
    public void NamesFollowTheSemaphoresRules()
    {
        foreach (var name in new[] { "abc", "", @"a\b", @"Global\abc", new string('x', 300) })
        {
            Assert.Equal(new WaitHandleDistributedSemaphore(name, 1).Name, new EventWaitHandleDistributedLock(name).Name);
        }
        Assert.Equal(@"Global\abc", new EventWaitHandleDistributedLock("abc").Name);
        Assert.Equal(@"Global\abc", new EventWaitHandleDistributedLock(@"Global\abc", exactName: true).Name);
        Assert.Throws<ArgumentNullException>("name", () => new EventWaitHandleDistributedLock(null!));
        Assert.Throws<ArgumentNullException>("name", () => new EventWaitHandleDistributedLock(null!, exactName: true));
        foreach (var bad in new[] { "abc", @"Global\", @"Global\a\b", @"Global\" + new string('x', 254) })
        {
            Assert.Throws<FormatException>(() => new EventWaitHandleDistributedLock(bad, exactName: true));
        }
        Assert.Throws<ArgumentException>("name", () => new EventWaitHandleDistributedLock("a\0b"));
    }

    [Fact]
    public void AbandonmentCheckCadenceIsValidated()
    {
        Assert.Throws<ArgumentOutOfRangeException>("abandonmentCheckCadence", () => new EventWaitHandleDistributedLock("x", TimeSpan.Zero));
        Assert.Throws<ArgumentOutOfRangeException>("abandonmentCheckCadence", () => new EventWaitHandleDistributedLock("x", TimeSpan.FromSeconds(-2)));
        Assert.Throws<ArgumentOutOfRangeException>("abandonmentCheckCadence", () => new WaitHandleDistributedSynchronizationProvider(TimeSpan.Zero).CreateLock("x"));
        using var n = new UniqueName("lock-cadence");
        using var held = new EventWaitHandleDistributedLock(n.Name, Timeout.InfiniteTimeSpan).TryAcquire();
        Assert.NotNull(held);
    }

    [Fact]
    public async Task DisposeIsIdempotentAndTheLostTokenIsNoneUntilThen()
    {
        using var n = new UniqueName("lock-dispose");
        var gate = new EventWaitHandleDistributedLock(n.Name);
        IDistributedSynchronizationHandle first = gate.Acquire(Long);
        Assert.Equal(CancellationToken.None, first.HandleLostToken);
        first.Dispose();
        Assert.Throws<ObjectDisposedException>(() => first.HandleLostToken);
        var second = await gate.AcquireAsync(Long);
        first.Dispose(); // must not let go of second's hold
        await first.DisposeAsync();
        Assert.Null(gate.TryAcquire());
        await second.DisposeAsync();
        second.Dispose();
        using var third = gate.TryAcquire();
        Assert.NotNull(third);
    }

    [Fact]
    public async Task AsyncHoldersAreExclusive()
    {
        using var n = new UniqueName("lock-exclusive");
        var inside = 0;
        var overlaps = 0;
        var tasks = Enumerable.Range(0, 50).Select(_ => Task.Run(async () =>
        {
            await using (await new EventWaitHandleDistributedLock(n.Name).AcquireAsync(TimeSpan.FromSeconds(60)))
            {
                if (Interlocked.Increment(ref inside) != 1) { Interlocked.Increment(ref overlaps); }
                await Task.Delay(2);
                Interlocked.Decrement(ref inside);
            }
        })).ToList();
        var all = Task.WhenAll(tasks);
        Assert.Same(all, await Task.WhenAny(all, Task.Delay(TimeSpan.FromSeconds(120))));
        await all;
        Assert.Equal(0, overlaps);
    }

    [Fact]
    public void AGarbageCollectedHandleLetsTheLockGo()
    {
        using var n = new UniqueName("lock-gc");
        var gate = new EventWaitHandleDistributedLock(n.Name);
        TakeAndForget(gate);
        Assert.Equal(0, gate.QueryState().FreeCount);
        // The handle's finalizer gives the lock back; nothing else would.
        Assert.True(Poll.CollectingUntil(() => gate.QueryState().FreeCount == 1), "the dropped handle kept the lock");
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void TakeAndForget(EventWaitHandleDistributedLock gate) => Assert.NotNull(gate.Acquire(Long));

    [Fact]
    public void TheTypesAreDistributedLockCores()
    {
        Assert.Equal("DistributedLock.Core", typeof(IDistributedLock).Assembly.GetName().Name);
        using var n = new UniqueName("lock-iface");
        IDistributedLock gate = new EventWaitHandleDistributedLock(n.Name);
        Assert.Equal(@"Global\" + n.Name, gate.Name);
        using var held = gate.Acquire(Long);
        Assert.IsType<EventWaitHandleDistributedLockHandle>(held);
        Assert.Null(gate.TryAcquire());
    }

    [Fact]
    public async Task TheProviderMakesLocksForTheCoreExtensionMethods()
    {
        using var n = new UniqueName("lock-provider");
        var concrete = new WaitHandleDistributedSynchronizationProvider();
        Assert.Equal(@"Global\" + n.Name, concrete.CreateLock(n.Name).Name);
        Assert.Equal(n.Exact, concrete.CreateLock(n.Exact, exactName: true).Name);
        Assert.Throws<FormatException>(() => concrete.CreateLock(n.Name, exactName: true));

        // Core's extension methods make a lock per call: all of them are one lock.
        IDistributedLockProvider provider = concrete;
        var first = await provider.AcquireLockAsync(n.Name, Long);
        Assert.Null(provider.TryAcquireLock(n.Name));
        Assert.Null(await provider.TryAcquireLockAsync(n.Name));
        Assert.Throws<TimeoutException>(() => provider.AcquireLock(n.Name, TimeSpan.FromMilliseconds(10)));
        await first.DisposeAsync();
        await using var second = await provider.TryAcquireLockAsync(n.Name, Long);
        Assert.NotNull(second);
    }

    // On Windows an event and a semaphore cannot share a name: the second
    // to be opened throws. A lock is libwhsem's max-1 semaphore of its name.
    [Fact]
    public async Task ALockCannotOpenTheNameOfALargerSemaphoreInUse()
    {
        using var n = new UniqueName("lock-vs-semaphore");
        var semaphore = new WaitHandleDistributedSemaphore(n.Name, 3);
        using var ticket = semaphore.Acquire(Long);
        var gate = new EventWaitHandleDistributedLock(n.Name);
        var e = Assert.Throws<WaitHandleCannotBeOpenedException>(() => gate.TryAcquire());
        Assert.Contains(@"Global\" + n.Name, e.Message);
        Assert.Equal("WHSEM_E_MAX_COUNT_MISMATCH", e.Data["whsem.status"]);
        await Assert.ThrowsAsync<WaitHandleCannotBeOpenedException>(async () => await gate.AcquireAsync(Long));
        // The semaphore is unharmed: its other tickets are there.
        using var second = semaphore.TryAcquire();
        Assert.NotNull(second);
    }

    [Fact]
    public void ALargerSemaphoreCannotOpenTheNameOfALockInUse()
    {
        using var n = new UniqueName("semaphore-vs-lock");
        using var held = new EventWaitHandleDistributedLock(n.Name).Acquire(Long);
        var e = Assert.Throws<InvalidOperationException>(() => new WaitHandleDistributedSemaphore(n.Name, 2).TryAcquire());
        Assert.Contains("max count 1", e.Message);
    }

    [Fact]
    public void ALockIsTheSameObjectAsAMaxOneSemaphoreOfItsName()
    {
        using var n = new UniqueName("lock-is-max-one");
        var gate = new EventWaitHandleDistributedLock(n.Name);
        var semaphore = new WaitHandleDistributedSemaphore(n.Name, 1);
        using (gate.Acquire(Long))
        {
            Assert.Null(semaphore.TryAcquire());
        }
        using (semaphore.Acquire(Long))
        {
            Assert.Null(gate.TryAcquire());
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ALockHeldByAChildBlocksTheParentUntilReleased(bool async)
    {
        using var n = new UniqueName($"lock-child-{async}");
        await Child.AssertItsTicketBlocksUntilReleased(
            new LockAsSemaphore(new EventWaitHandleDistributedLock(n.Exact, exactName: true)), async, "--name", n.Exact, "--lock", "--exact");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task AKilledHolderLosesTheLock(bool async)
    {
        using var n = new UniqueName($"lock-kill-{async}");
        await Child.AssertAKilledHolderLosesIt(
            new LockAsSemaphore(new EventWaitHandleDistributedLock(n.Name, TimeSpan.FromMilliseconds(50))), async, "--name", n.Name, "--lock");
    }
}

/// <summary>
/// A lock seen as a semaphore of one ticket, so that the tests written for
/// <see cref="IDistributedSemaphore"/> also check the lock.
/// </summary>
internal sealed class LockAsSemaphore(IDistributedLock inner) : IDistributedSemaphore
{
    public string Name => inner.Name;

    public int MaxCount => 1;

    public IDistributedSynchronizationHandle? TryAcquire(TimeSpan timeout = default, CancellationToken cancellationToken = default) =>
        inner.TryAcquire(timeout, cancellationToken);

    public IDistributedSynchronizationHandle Acquire(TimeSpan? timeout = null, CancellationToken cancellationToken = default) =>
        inner.Acquire(timeout, cancellationToken);

    public ValueTask<IDistributedSynchronizationHandle?> TryAcquireAsync(TimeSpan timeout = default, CancellationToken cancellationToken = default) =>
        inner.TryAcquireAsync(timeout, cancellationToken);

    public ValueTask<IDistributedSynchronizationHandle> AcquireAsync(TimeSpan? timeout = null, CancellationToken cancellationToken = default) =>
        inner.AcquireAsync(timeout, cancellationToken);
}
