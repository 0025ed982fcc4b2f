// SPDX-License-Identifier: MIT
using LibWhsem.Interop;

namespace Medallion.Threading.Postgres;

/// <summary>
/// A ticket taken from a <see cref="PostgresDistributedSemaphore"/>, as an
/// <see cref="IDistributedSynchronizationHandle"/>. Disposing it puts the
/// ticket back; so does the garbage collector for a handle dropped
/// undisposed, and the server for a process that dies holding it.
/// </summary>
public sealed class PostgresDistributedSemaphoreHandle : IDistributedSynchronizationHandle
{
    // A handle is used from any thread; this serializes HandleLostToken
    // with Dispose, so a watch is only ever started on a ticket still held
    // by this handle (a disposed handle's slot may hold another's ticket).
    private readonly object _gate = new();
    private TicketSlot? _slot;
    private CancellationToken? _lostToken;

    /// <summary>A handle for the ticket just lent to <paramref name="slot"/>.</summary>
    internal PostgresDistributedSemaphoreHandle(TicketSlot slot) => _slot = slot;

    /// <summary>
    /// The <see cref="IDistributedSynchronizationHandle.HandleLostToken"/>,
    /// cancelled when the ticket is lost before the handle is disposed,
    /// because the PostgreSQL session that carries it ended (a server
    /// restart, <c>pg_terminate_backend</c>, a network failure); the server
    /// may then have given the ticket to someone else.
    /// </summary>
    /// <remarks>
    /// The ticket is watched from the first read of this property on. The
    /// watch costs the server nothing (libwhsem notices the end of the
    /// connection on the client's side): a closed connection is seen at once,
    /// a silent network failure within about three connection check cadences.
    /// Callbacks registered on the token run on the thread pool.
    /// </remarks>
    /// <exception cref="ObjectDisposedException">The handle was disposed.</exception>
    public CancellationToken HandleLostToken
    {
        get
        {
            lock (_gate)
            {
                var slot = _slot ?? throw new ObjectDisposedException(nameof(PostgresDistributedSemaphoreHandle));
                _lostToken ??= TicketLossWatch.Start(slot.LentTicket);
                return _lostToken.Value;
            }
        }
    }

    /// <summary>
    /// Puts the ticket back. Any later call, on any thread, has no effect,
    /// and no call throws, not even for a ticket that was lost.
    /// </summary>
    public void Dispose()
    {
        TicketSlot? slot;
        lock (_gate)
        {
            slot = _slot;
            _slot = null;
        }
        // libwhsem queues the unlock on the session without waiting for the
        // server's answer: no round trip here.
        slot?.Release(slot.LentTicket);
    }

    /// <summary>Puts the ticket back without waiting for the server; the same as <see cref="Dispose"/>.</summary>
    public ValueTask DisposeAsync()
    {
        Dispose();
        return default;
    }
}
