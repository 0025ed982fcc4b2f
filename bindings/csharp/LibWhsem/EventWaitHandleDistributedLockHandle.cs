// SPDX-License-Identifier: MIT
using LibWhsem.Interop;

namespace Medallion.Threading.WaitHandles;

/// <summary>
/// A held <see cref="EventWaitHandleDistributedLock"/>, as an
/// <see cref="IDistributedSynchronizationHandle"/>: disposing it lets the
/// lock go. So does the garbage collector for a handle that was dropped
/// undisposed, and the waiters' abandonment check for a process that died
/// holding the lock.
/// </summary>
public sealed class EventWaitHandleDistributedLockHandle : IDistributedSynchronizationHandle
{
    private TicketSlot? _slot;

    internal EventWaitHandleDistributedLockHandle(TicketSlot slot) => _slot = slot;

    // Not public, as in the original. A lock on this machine stays with this
    // process while it lives, so the token never fires.
    CancellationToken IDistributedSynchronizationHandle.HandleLostToken
    {
        get
        {
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _slot) is null, this);
            return CancellationToken.None;
        }
    }

    /// <summary>Lets the lock go. Any later call, on any thread, has no effect.</summary>
    public void Dispose() => TicketSlot.ReleaseFrom(ref _slot);

    /// <summary>Lets the lock go, without waiting for anything; the same as <see cref="Dispose"/>.</summary>
    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }
}
