// SPDX-License-Identifier: MIT
using Medallion.Threading;
using Medallion.Threading.WaitHandles;
using Xunit;

namespace LibWhsem.Tests;

public class AcquireTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task BasicSemantics()
    {
        using var n = new UniqueName("basic");
        var semaphore = new WaitHandleDistributedSemaphore(n.Name, 1);
        using (var handle = semaphore.TryAcquire())
        {
            Assert.NotNull(handle);
            using var nested = semaphore.TryAcquire();
            Assert.Null(nested); // not reentrant
            Assert.Null(await semaphore.TryAcquireAsync());
        }
        await using (var handle = await semaphore.TryAcquireAsync())
        {
            Assert.NotNull(handle);
        }
        await using (await semaphore.AcquireAsync(Long)) { }
        using (semaphore.Acquire()) { }
    }

    [Fact]
    public void BadTimeoutsAreOutOfRangeEvenForTheAsyncMethods()
    {
        var semaphore = new WaitHandleDistributedSemaphore("never-opened", 1);
        foreach (var bad in new[] { TimeSpan.FromSeconds(-2), TimeSpan.FromMilliseconds(-2), TimeSpan.FromSeconds(int.MaxValue), TimeSpan.FromMilliseconds(int.MaxValue + 1.0), TimeSpan.MaxValue, TimeSpan.MinValue })
        {
            Assert.Throws<ArgumentOutOfRangeException>("timeout", () => semaphore.Acquire(bad));
            Assert.Throws<ArgumentOutOfRangeException>("timeout", () => semaphore.TryAcquire(bad));
            // Thrown by the call itself, not through the task.
            Assert.Throws<ArgumentOutOfRangeException>("timeout", () => { _ = semaphore.AcquireAsync(bad); });
            Assert.Throws<ArgumentOutOfRangeException>("timeout", () => { _ = semaphore.TryAcquireAsync(bad); });
        }
    }

    [Fact]
    public void InfiniteAndLargestTimeoutsAreAccepted()
    {
        using var n = new UniqueName("inf");
        var semaphore = new WaitHandleDistributedSemaphore(n.Name, 1);
        semaphore.Acquire(Timeout.InfiniteTimeSpan).Dispose();
        semaphore.Acquire(TimeSpan.FromMilliseconds(-1.5)).Dispose(); // truncates to -1, like the original
        semaphore.Acquire(TimeSpan.FromMilliseconds(int.MaxValue)).Dispose();
        Assert.NotNull(semaphore.TryAcquire(TimeSpan.FromMilliseconds(-0.5))); // truncates to 0
    }

    [Fact]
    public async Task TimeoutsGiveNullOrTimeoutException()
    {
        using var n = new UniqueName("timeout");
        await SemaphoreContract.TimeoutsGiveNullOrTimeoutException(
            new WaitHandleDistributedSemaphore(n.Name, 1), new WaitHandleDistributedSemaphore(n.Name, 1));
    }

    [Fact]
    public async Task AlreadyCanceledThrowsForSyncAndCancelsTheTaskForAsync()
    {
        using var n = new UniqueName("precanceled");
        await SemaphoreContract.AlreadyCanceledThrowsForSyncAndCancelsTheTaskForAsync(new WaitHandleDistributedSemaphore(n.Name, 1));
    }

    [Fact]
    public async Task CancelingAWaitingAsyncAcquisitionCancelsTheTask()
    {
        using var n = new UniqueName("cancel-async");
        var semaphore = new WaitHandleDistributedSemaphore(n.Name, 1);
        using var source = new CancellationTokenSource();
        using (new WaitHandleDistributedSemaphore(n.Name, 1).Acquire(Long))
        {
            var blocked = semaphore.AcquireAsync(cancellationToken: source.Token).AsTask();
            Assert.False(blocked.Wait(TimeSpan.FromMilliseconds(100)));
            source.Cancel();
            await Task.WhenAny(blocked, Task.Delay(Long));
            Assert.Equal(TaskStatus.Canceled, blocked.Status);
            var e = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => blocked);
            Assert.Equal(source.Token, e.CancellationToken);
        }
        using var handle = semaphore.TryAcquire(Long);
        Assert.NotNull(handle);
    }

    [Fact]
    public async Task AFailedAsyncAcquisitionCarriesTheLibrarysMessage()
    {
        using var n = new UniqueName("async-error");
        var semaphore = new WaitHandleDistributedSemaphore(n.Name, 1);
        using var held = semaphore.Acquire(Long);
        var blocked = semaphore.AcquireAsync(Long).AsTask();
        Assert.False(blocked.Wait(TimeSpan.FromMilliseconds(100)));
        // The library's own thread finds the shared state truncated under
        // the wait; its message still reaches the awaiting task.
        var file = Directory.GetFiles("/dev/shm").Single(f => f.Contains(n.Name, StringComparison.Ordinal));
        using (var stream = new FileStream(file, FileMode.Open, FileAccess.Write)) { stream.SetLength(0); }
        await Task.WhenAny(blocked, Task.Delay(Long));
        var e = await Assert.ThrowsAsync<IOException>(() => blocked);
        Assert.Contains("WHSEM_E_CORRUPT", e.Message, StringComparison.Ordinal);
        Assert.Contains("truncated", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CancelingAWaitingSyncAcquisitionThrows()
    {
        using var n = new UniqueName("cancel-sync");
        var semaphore = new WaitHandleDistributedSemaphore(n.Name, 1);
        using var source = new CancellationTokenSource();
        using (new WaitHandleDistributedSemaphore(n.Name, 1).Acquire(Long))
        {
            var blocked = Task.Run(() => semaphore.Acquire(cancellationToken: source.Token));
            Assert.False(blocked.Wait(TimeSpan.FromMilliseconds(100)));
            source.Cancel();
            Assert.True(((Task)blocked).ContinueWith(_ => { }).Wait(Long));
            Assert.IsAssignableFrom<OperationCanceledException>(blocked.Exception!.InnerException);

            // A bounded wait is canceled the same way.
            using var source2 = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
            Assert.Throws<OperationCanceledException>(() => semaphore.TryAcquire(TimeSpan.FromSeconds(60), source2.Token));
        }
        using var handle = semaphore.TryAcquire(Long);
        Assert.NotNull(handle);
    }

    // DistributedLock issue #120: on Windows, a cancellation that raced with
    // a release could swallow the released ticket. Here the waiter either
    // gets the ticket or is cancelled, and in both cases the ticket is free
    // again afterwards: checked after every race, not only at the end.
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task CancellationNeverLosesATicket(bool async)
    {
        using var n = new UniqueName($"no-lost-{async}");
        var semaphore = new WaitHandleDistributedSemaphore(n.Name, 1);
        var jitter = new Random(20261201);
        var (granted, canceled) = (0, 0);
        for (var round = 0; round < 40; round++)
        {
            var holder = semaphore.Acquire(Long);
            using var cancel = new CancellationTokenSource();
            var waiter = async
                ? semaphore.AcquireAsync(Long, cancel.Token).AsTask()
                : Task.Factory.StartNew(() => semaphore.Acquire(Long, cancel.Token), TaskCreationOptions.LongRunning);
            // Race only once the waiter is really waiting inside libwhsem.
            Assert.True(Poll.Until(() => semaphore.QueryState().Waiters == 1), "the waiter never started waiting");

            using var go = new ManualResetEventSlim();
            var (releaseSpins, cancelSpins) = (jitter.Next(0, 200), jitter.Next(0, 200));
            var racers = new[]
            {
                Task.Run(() => { go.Wait(); Thread.SpinWait(releaseSpins); holder.Dispose(); }),
                Task.Run(() => { go.Wait(); Thread.SpinWait(cancelSpins); cancel.Cancel(); }),
            };
            go.Set();
            await Task.WhenAll(racers).WaitAsync(TimeSpan.FromSeconds(60));

            try
            {
                (await waiter.WaitAsync(TimeSpan.FromSeconds(60))).Dispose();
                granted++;
            }
            catch (OperationCanceledException)
            {
                canceled++;
            }
            using var free = semaphore.TryAcquire();
            Assert.True(free != null, $"round {round}: the ticket was lost ({granted} granted, {canceled} cancelled so far)");
        }
        Assert.Equal(40, granted + canceled);
    }

    [Fact]
    public void DisposeIsIdempotent()
    {
        using var n = new UniqueName("dispose");
        var semaphore = new WaitHandleDistributedSemaphore(n.Name, 1);
        var handle = semaphore.Acquire(Long);
        handle.Dispose();
        var handle2 = semaphore.Acquire(Long);
        handle.Dispose(); // must not release handle2's ticket
        Assert.Null(semaphore.TryAcquire());
        handle2.Dispose();
        handle2.Dispose();
        using var handle3 = semaphore.TryAcquire();
        Assert.NotNull(handle3);
    }

    [Fact]
    public async Task ConcurrentDisposeReleasesOnce()
    {
        using var n = new UniqueName("dispose-race");
        var semaphore = new WaitHandleDistributedSemaphore(n.Name, 2);
        for (var i = 0; i < 200; i++)
        {
            var handle = semaphore.Acquire(Long);
            using var start = new Barrier(4);
            await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(() => { start.SignalAndWait(); handle.Dispose(); })));
        }
        // Exactly two tickets are left, and each acquisition owns its own.
        using var a = semaphore.Acquire(Long);
        using var b = semaphore.Acquire(Long);
        Assert.Null(semaphore.TryAcquire());
    }

    [Fact]
    public async Task DisposeAsyncReleases()
    {
        using var n = new UniqueName("dispose-async");
        var semaphore = new WaitHandleDistributedSemaphore(n.Name, 1);
        var handle = await semaphore.AcquireAsync(Long);
        await handle.DisposeAsync();
        await handle.DisposeAsync();
        Assert.NotNull(await semaphore.TryAcquireAsync());
    }

    [Fact]
    public async Task HandleLostTokenIsNoneThenThrowsAfterDispose()
    {
        using var n = new UniqueName("lost");
        var semaphore = new WaitHandleDistributedSemaphore(n.Name, 1);
        var handle = await semaphore.AcquireAsync(Long);
        Assert.False(handle.HandleLostToken.CanBeCanceled);
        Assert.False(handle.HandleLostToken.IsCancellationRequested);
        Assert.Equal(CancellationToken.None, handle.HandleLostToken);
        await handle.DisposeAsync();
        Assert.Throws<ObjectDisposedException>(() => handle.HandleLostToken);
    }

    [Fact]
    public void TheInterfacesAreDistributedLockCores()
    {
        // Drop-in: code typed against DistributedLock.Core's abstractions
        // takes this implementation.
        Assert.Equal("DistributedLock.Core", typeof(IDistributedSemaphore).Assembly.GetName().Name);
        using var n = new UniqueName("iface");
        IDistributedSemaphore semaphore = new WaitHandleDistributedSemaphore(n.Name, 1);
        using var handle = semaphore.Acquire(Long);
        Assert.IsType<WaitHandleDistributedSemaphoreHandle>(handle);
        Assert.Null(semaphore.TryAcquire());
    }

    // DistributedLock.Core's extension methods create a semaphore per call
    // through the provider; every one of them must reach the same tickets.
    [Fact]
    public async Task ProviderWorksWithTheCoreExtensionMethods()
    {
        using var n = new UniqueName("provider");
        IDistributedSemaphoreProvider provider = new WaitHandleDistributedSynchronizationProvider();
        var taken = new List<IDistributedSynchronizationHandle>
        {
            provider.AcquireSemaphore(n.Name, 3, Long),
            await provider.AcquireSemaphoreAsync(n.Name, 3, Long),
            (await provider.TryAcquireSemaphoreAsync(n.Name, 3))!,
        };
        Assert.All(taken, Assert.NotNull);
        Assert.Null(provider.TryAcquireSemaphore(n.Name, 3));
        await Assert.ThrowsAsync<TimeoutException>(async () => await provider.AcquireSemaphoreAsync(n.Name, 3, TimeSpan.Zero));

        await taken[1].DisposeAsync();
        using var again = provider.TryAcquireSemaphore(n.Name, 3, Long);
        Assert.NotNull(again);
        taken.ForEach(h => h.Dispose());
    }

    [Fact]
    public void AMaxCountMismatchIsAClearError()
    {
        using var n = new UniqueName("mismatch");
        using var held = new WaitHandleDistributedSemaphore(n.Name, 2).Acquire(Long);
        var other = new WaitHandleDistributedSemaphore(n.Name, 3);
        var e = Assert.Throws<InvalidOperationException>(() => other.TryAcquire());
        Assert.Contains("max count 2", e.Message);
        Assert.Equal("WHSEM_E_MAX_COUNT_MISMATCH", e.Data["whsem.status"]);
        // The async methods report it through the task.
        var task = other.AcquireAsync(Long);
        Assert.True(task.IsFaulted);
    }
}
