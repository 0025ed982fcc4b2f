// SPDX-License-Identifier: MIT
// Compiled only with -p:WhsemStandaloneInterfaces=true, for machines that
// cannot restore the DistributedLock.Core package: the interfaces this
// binding implements, with the same shapes, so code written against them
// compiles unchanged. Do not use this mode next to DistributedLock.Core
// itself: the types would clash.

namespace Medallion.Threading;

/// <summary>A handle to a held lock or semaphore ticket; disposing it releases it.</summary>
public interface IDistributedSynchronizationHandle : IDisposable, IAsyncDisposable
{
    /// <summary>Signals when the handle can no longer guarantee that it holds what it acquired.</summary>
    CancellationToken HandleLostToken { get; }
}

/// <summary>A lock shared across processes: one holder at a time.</summary>
public interface IDistributedLock
{
    /// <summary>The lock's name.</summary>
    string Name { get; }

    /// <summary>Tries to take the lock, giving up after <paramref name="timeout"/> (null on failure).</summary>
    IDistributedSynchronizationHandle? TryAcquire(TimeSpan timeout = default, CancellationToken cancellationToken = default);

    /// <summary>Takes the lock, throwing <see cref="TimeoutException"/> after <paramref name="timeout"/>.</summary>
    IDistributedSynchronizationHandle Acquire(TimeSpan? timeout = null, CancellationToken cancellationToken = default);

    /// <summary>Tries to take the lock asynchronously (null on failure).</summary>
    ValueTask<IDistributedSynchronizationHandle?> TryAcquireAsync(TimeSpan timeout = default, CancellationToken cancellationToken = default);

    /// <summary>Takes the lock asynchronously, throwing <see cref="TimeoutException"/> after <paramref name="timeout"/>.</summary>
    ValueTask<IDistributedSynchronizationHandle> AcquireAsync(TimeSpan? timeout = null, CancellationToken cancellationToken = default);
}

/// <summary>Creates locks by name.</summary>
public interface IDistributedLockProvider
{
    /// <summary>A lock called <paramref name="name"/>.</summary>
    IDistributedLock CreateLock(string name);
}

/// <summary>A semaphore shared across processes.</summary>
public interface IDistributedSemaphore
{
    /// <summary>The semaphore's name.</summary>
    string Name { get; }

    /// <summary>How many tickets may be held at once.</summary>
    int MaxCount { get; }

    /// <summary>Tries to take a ticket, giving up after <paramref name="timeout"/> (null on failure).</summary>
    IDistributedSynchronizationHandle? TryAcquire(TimeSpan timeout = default, CancellationToken cancellationToken = default);

    /// <summary>Takes a ticket, throwing <see cref="TimeoutException"/> after <paramref name="timeout"/>.</summary>
    IDistributedSynchronizationHandle Acquire(TimeSpan? timeout = null, CancellationToken cancellationToken = default);

    /// <summary>Tries to take a ticket asynchronously (null on failure).</summary>
    ValueTask<IDistributedSynchronizationHandle?> TryAcquireAsync(TimeSpan timeout = default, CancellationToken cancellationToken = default);

    /// <summary>Takes a ticket asynchronously, throwing <see cref="TimeoutException"/> after <paramref name="timeout"/>.</summary>
    ValueTask<IDistributedSynchronizationHandle> AcquireAsync(TimeSpan? timeout = null, CancellationToken cancellationToken = default);
}

/// <summary>Creates semaphores by name.</summary>
public interface IDistributedSemaphoreProvider
{
    /// <summary>A semaphore called <paramref name="name"/> with <paramref name="maxCount"/> tickets.</summary>
    IDistributedSemaphore CreateSemaphore(string name, int maxCount);
}
