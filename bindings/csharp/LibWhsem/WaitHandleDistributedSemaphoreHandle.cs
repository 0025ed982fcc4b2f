using LibWhsem.Interop;

namespace Medallion.Threading.WaitHandles;

/// <summary>
/// One ticket of a <see cref="WaitHandleDistributedSemaphore"/>. Disposing it
/// returns the ticket; so does the garbage collector for a handle that was
/// dropped without being disposed (and libwhsem, within the abandonment
/// check cadence, for a process that died holding it).
/// Implements <see cref="IDistributedSynchronizationHandle"/>.
/// </summary>
public sealed class WaitHandleDistributedSemaphoreHandle : IDistributedSynchronizationHandle
{
    private TicketSlot? _slot;

    internal WaitHandleDistributedSemaphoreHandle(TicketSlot slot)
    {
        _slot = slot;
    }

    /// <summary>
    /// Implements <see cref="IDistributedSynchronizationHandle.HandleLostToken"/>.
    /// A ticket of a named semaphore cannot be lost while this process lives,
    /// so this is <see cref="CancellationToken.None"/>, as for the original.
    /// Throws <see cref="ObjectDisposedException"/> once the handle is disposed.
    /// </summary>
    public CancellationToken HandleLostToken =>
        Volatile.Read(ref _slot) != null ? CancellationToken.None : throw new ObjectDisposedException(nameof(WaitHandleDistributedSemaphoreHandle));

    /// <summary>Releases the semaphore ticket. Calling it again, from any thread, does nothing.</summary>
    public void Dispose() => Interlocked.Exchange(ref _slot, null)?.ReleaseAndReturn();

    /// <summary>Releases the semaphore ticket. Calling it again, from any thread, does nothing.</summary>
    public ValueTask DisposeAsync()
    {
        Dispose();
        return default;
    }
}
