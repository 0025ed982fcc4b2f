// SPDX-License-Identifier: MIT
namespace Medallion.Threading.WaitHandles;

/// <summary>
/// Implements <see cref="IDistributedSemaphoreProvider"/> for
/// <see cref="WaitHandleDistributedSemaphore"/>, so that code written against
/// the provider abstraction (and DistributedLock.Core's extension methods
/// such as <c>AcquireSemaphoreAsync</c>) runs unchanged.
/// </summary>
public sealed class WaitHandleDistributedSynchronizationProvider : IDistributedSemaphoreProvider
{
    private readonly TimeSpan? _abandonmentCheckCadence;

    /// <summary>
    /// Constructs a <see cref="WaitHandleDistributedSynchronizationProvider"/> using the provided
    /// <paramref name="abandonmentCheckCadence"/> for every semaphore it creates.
    /// </summary>
    public WaitHandleDistributedSynchronizationProvider(TimeSpan? abandonmentCheckCadence = null)
    {
        _abandonmentCheckCadence = abandonmentCheckCadence;
    }

    /// <summary>
    /// Creates a <see cref="WaitHandleDistributedSemaphore"/> with the given <paramref name="name"/>
    /// and <paramref name="maxCount"/>. Unless <paramref name="exactName"/> is specified, invalid
    /// names will be escaped/hashed.
    /// </summary>
    public WaitHandleDistributedSemaphore CreateSemaphore(string name, int maxCount, bool exactName = false) =>
        new(name, maxCount, _abandonmentCheckCadence, exactName);

    IDistributedSemaphore IDistributedSemaphoreProvider.CreateSemaphore(string name, int maxCount) =>
        CreateSemaphore(name, maxCount);
}
