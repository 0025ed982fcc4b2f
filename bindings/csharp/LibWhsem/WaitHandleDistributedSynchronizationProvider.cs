// SPDX-License-Identifier: MIT
namespace Medallion.Threading.WaitHandles;

/// <summary>
/// Makes this machine's locks and semaphores by name, for code that is
/// written against DistributedLock.Core's <see cref="IDistributedLockProvider"/>
/// and <see cref="IDistributedSemaphoreProvider"/> (and their extension
/// methods, such as <c>provider.AcquireLockAsync("name")</c>).
/// </summary>
public sealed class WaitHandleDistributedSynchronizationProvider : IDistributedLockProvider, IDistributedSemaphoreProvider
{
    private readonly TimeSpan? _abandonmentCheckCadence;

    /// <summary>A provider whose locks and semaphores all check for dead holders every <paramref name="abandonmentCheckCadence"/>.</summary>
    /// <param name="abandonmentCheckCadence">
    /// Passed on to every object made here, and checked when one is made
    /// (see <see cref="WaitHandleDistributedSemaphore(string, int, TimeSpan?, bool)"/>); null for libwhsem's period.
    /// </param>
    public WaitHandleDistributedSynchronizationProvider(TimeSpan? abandonmentCheckCadence = null)
    {
        _abandonmentCheckCadence = abandonmentCheckCadence;
    }

    /// <summary>An <see cref="EventWaitHandleDistributedLock"/> called <paramref name="name"/>.</summary>
    /// <param name="name">Made valid as the lock's constructor does, unless <paramref name="exactName"/>.</param>
    /// <param name="exactName">Take <paramref name="name"/> as it is; it must already be valid.</param>
    public EventWaitHandleDistributedLock CreateLock(string name, bool exactName = false) =>
        new(name, _abandonmentCheckCadence, exactName);

    IDistributedLock IDistributedLockProvider.CreateLock(string name) => CreateLock(name);

    /// <summary>A <see cref="WaitHandleDistributedSemaphore"/> called <paramref name="name"/> with <paramref name="maxCount"/> tickets.</summary>
    /// <param name="name">Made valid as the semaphore's constructor does, unless <paramref name="exactName"/>.</param>
    /// <param name="maxCount">The number of tickets, at least 1.</param>
    /// <param name="exactName">Take <paramref name="name"/> as it is; it must already be valid.</param>
    public WaitHandleDistributedSemaphore CreateSemaphore(string name, int maxCount, bool exactName = false) =>
        new(name, maxCount, _abandonmentCheckCadence, exactName);

    IDistributedSemaphore IDistributedSemaphoreProvider.CreateSemaphore(string name, int maxCount) =>
        CreateSemaphore(name, maxCount);
}
