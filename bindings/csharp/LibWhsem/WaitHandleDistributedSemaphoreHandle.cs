// SPDX-License-Identifier: MIT
using LibWhsem.Interop;

namespace Medallion.Threading.WaitHandles;

/// <summary>
/// A ticket taken from a <see cref="WaitHandleDistributedSemaphore"/>, as an
/// <see cref="IDistributedSynchronizationHandle"/>. Disposing it puts the
/// ticket back. A handle that is never disposed still gives its ticket back,
/// when the garbage collector finalizes it, and a process that dies holding
/// tickets loses them to the waiters' next abandonment check.
/// </summary>
public sealed class WaitHandleDistributedSemaphoreHandle : IDistributedSynchronizationHandle
{
    private TicketSlot? _slot;

    internal WaitHandleDistributedSemaphoreHandle(TicketSlot slot) => _slot = slot;

    /// <summary>
    /// Never cancelled: a ticket on this machine stays with this process for
    /// as long as it lives, so the token is <see cref="CancellationToken.None"/>,
    /// as the original's is.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The handle has been disposed.</exception>
    public CancellationToken HandleLostToken
    {
        get
        {
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _slot) is null, this);
            return CancellationToken.None;
        }
    }

    /// <summary>The slot of the ticket, or null after disposal.</summary>
    internal TicketSlot? Slot => Volatile.Read(ref _slot);

    /// <summary>Puts the ticket back. Any later call, on any thread, has no effect.</summary>
    public void Dispose() => TicketSlot.ReleaseFrom(ref _slot);

    /// <summary>Puts the ticket back, without waiting for anything; the same as <see cref="Dispose"/>.</summary>
    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }
}
