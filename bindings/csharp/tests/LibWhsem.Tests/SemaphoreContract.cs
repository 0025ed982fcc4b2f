// SPDX-License-Identifier: MIT
using System.Diagnostics;
using Medallion.Threading;
using Xunit;

namespace LibWhsem.Tests;

/// <summary>
/// DistributedLock's conventions for an <see cref="IDistributedSemaphore"/>,
/// written once and checked for each semaphore class of the binding (on
/// shared memory and on PostgreSQL).
/// </summary>
internal static class SemaphoreContract
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(30);

    /// <summary><paramref name="semaphore"/> has max count 1 and <paramref name="holder"/> is another instance of it.</summary>
    public static async Task TimeoutsGiveNullOrTimeoutException(IDistributedSemaphore semaphore, IDistributedSemaphore holder)
    {
        using var held = holder.Acquire(Long);
        var timeout = TimeSpan.FromMilliseconds(200);

        var sw = Stopwatch.StartNew();
        Assert.Throws<TimeoutException>(() => semaphore.Acquire(timeout));
        Assert.True(sw.Elapsed >= TimeSpan.FromMilliseconds(150), $"gave up after {sw.Elapsed}");
        await Assert.ThrowsAsync<TimeoutException>(async () => await semaphore.AcquireAsync(timeout));
        Assert.Null(semaphore.TryAcquire(timeout));
        Assert.Null(await semaphore.TryAcquireAsync(timeout));
        // Zero timeouts: a single try, whichever path the async methods take.
        await Assert.ThrowsAsync<TimeoutException>(async () => await semaphore.AcquireAsync(TimeSpan.Zero));
        Assert.Null(await semaphore.TryAcquireAsync(TimeSpan.Zero));
        Assert.Throws<TimeoutException>(() => semaphore.Acquire(TimeSpan.Zero));
    }

    /// <summary>A token cancelled before the call wins over a free ticket, and takes nothing.</summary>
    public static async Task AlreadyCanceledThrowsForSyncAndCancelsTheTaskForAsync(IDistributedSemaphore semaphore)
    {
        using var source = new CancellationTokenSource();
        source.Cancel();

        Assert.Throws<OperationCanceledException>(() => semaphore.Acquire(cancellationToken: source.Token));
        Assert.Throws<OperationCanceledException>(() => semaphore.TryAcquire(cancellationToken: source.Token));
        Assert.Throws<OperationCanceledException>(() => semaphore.TryAcquire(Long, source.Token));

        var acquire = semaphore.AcquireAsync(cancellationToken: source.Token).AsTask();
        var tryAcquire = semaphore.TryAcquireAsync(Long, source.Token).AsTask();
        await Task.WhenAny(Task.WhenAll(acquire, tryAcquire!), Task.Delay(Long));
        Assert.True(acquire.IsCanceled, acquire.Status.ToString());
        Assert.True(tryAcquire.IsCanceled, tryAcquire.Status.ToString());

        using var handle = semaphore.TryAcquire();
        Assert.NotNull(handle);
    }
}
