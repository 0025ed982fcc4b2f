// SPDX-License-Identifier: MIT
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

    /// <summary>A handle for the ticket just lent to <paramref name="slot"/>.</summary>
    internal WaitHandleDistributedSemaphoreHandle(TicketSlot slot) => _slot = slot;

    /// <summary>
    /// Implements <see cref="IDistributedSynchronizationHandle.HandleLostToken"/>.
    /// A ticket of a named semaphore cannot be lost while this process lives,
    /// so this is <see cref="CancellationToken.None"/>, as for the original.
    /// Throws <see cref="ObjectDisposedException"/> once the handle is disposed.
    /// </summary>
    public CancellationToken HandleLostToken =>
        Slot != null ? CancellationToken.None : throw new ObjectDisposedException(nameof(WaitHandleDistributedSemaphoreHandle));

    /// <summary>The slot guarding the ticket, or null once disposed.</summary>
    internal TicketSlot? Slot => Volatile.Read(ref _slot);

    /// <summary>Releases the semaphore ticket. Calling it again, from any thread, does nothing.</summary>
    public void Dispose()
    {
        // No interlocked claim: libwhsem lets only one release of a ticket
        // succeed, and only that caller gives the slot back (TicketSlot).
        var slot = Slot;
        if (slot is null) { return; }
        var ticket = slot.LentTicket;
        // The slot is lent again only after a Dispose of this handle cleared
        // _slot, and a ticket is stored in it only after that (Lend): if
        // _slot is still set once the ticket was read, it is this handle's.
        if (Slot != slot) { return; }
        Volatile.Write(ref _slot, null);
        slot.Release(ticket);
    }

    /// <summary>Releases the semaphore ticket. Calling it again, from any thread, does nothing.</summary>
    public ValueTask DisposeAsync()
    {
        Dispose();
        return default;
    }
}
