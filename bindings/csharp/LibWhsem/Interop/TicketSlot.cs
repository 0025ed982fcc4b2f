// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using System.Runtime.ConstrainedExecution;

namespace LibWhsem.Interop;

/// <summary>
/// Owns one held ticket (whsem_ticket) for a handle, and returns it to the
/// pool through the finalizer if the handle is dropped without Dispose.
/// </summary>
/// <remarks>
/// Tickets are the one libwhsem handle not wrapped in a fresh SafeHandle:
/// allocating a finalizable object per ticket costs over 40 ns, more than
/// the native acquire + release. A slot is finalizable once and reused:
/// a released slot goes back to a one-entry cache of the releasing thread,
/// where it stays reachable (so its finalizer never runs while it is idle).
/// A slot is lent to one handle at a time. One that is lost with its handle
/// becomes unreachable and its finalizer releases the ticket, as a
/// SafeHandle's would.
///
/// Which caller released a ticket is decided by libwhsem, not by an atomic
/// instruction here: a ticket is released once, and every later release of
/// it is WHSEM_E_INVALID_HANDLE (the ABI promises it, and both platforms
/// decide between concurrent releases of one ticket inside the library).
/// An interlocked exchange per Dispose cost about as much as everything
/// else the binding adds to the native pair, so a handle gives its ticket
/// to <see cref="Release"/> with plain reads and writes, and only the caller
/// that got WHSEM_OK touches the slot again. The price is a theoretical
/// one: a Dispose racing another Dispose of the same handle passes a stale
/// ticket to libwhsem, which names another ticket only once the generation
/// counter of its table entry wraps (2^36 reuses in libwhsem 1.0) between
/// that Dispose's check of the handle and its native call. A racing
/// Dispose never reads the slot's next ticket: the handle checks that it
/// still refers to the slot after reading the ticket (see Lend).
/// </remarks>
internal sealed class TicketSlot : CriticalFinalizerObject
{
    [ThreadStatic] private static TicketSlot? t_spare;

    /// <summary>
    /// Cleared by the garbage collector as soon as it finds the slot
    /// unreachable, before the finalizer runs. A slot whose handle was
    /// brought back by another object's finalizer can still be released
    /// through it; such a slot must not be lent again, because its own
    /// finalizer may be about to run (and then would release the next
    /// holder's ticket) or has run (and then would not guard the next one).
    /// </summary>
    private readonly WeakReference<TicketSlot> _unfinalized;

    /// <summary>The held ticket, or 0 while the slot is idle.</summary>
    internal ulong Ticket;

    /// <summary>Stores the ticket of the handle this slot is lent to.</summary>
    /// <remarks>
    /// A release write: whoever reads this ticket (with <see cref="LentTicket"/>)
    /// also sees the previous handle's Dispose clear its reference to the slot.
    /// </remarks>
    internal void Lend(ulong ticket) => Volatile.Write(ref Ticket, ticket);

    /// <summary>The ticket, read before a handle checks that it still owns the slot.</summary>
    internal ulong LentTicket => Volatile.Read(ref Ticket);

    private TicketSlot() => _unfinalized = new WeakReference<TicketSlot>(this);

    ~TicketSlot()
    {
        var ticket = Ticket;
        if (ticket != 0) { Native.whsem_release(ticket); }
    }

    internal static TicketSlot Rent()
    {
        var slot = t_spare;
        if (slot != null)
        {
            t_spare = null;
            return slot;
        }
        return new TicketSlot();
    }

    /// <summary>Gives back an idle slot (Ticket already 0) that no handle refers to.</summary>
    internal void Return()
    {
        if (t_spare == null && _unfinalized.TryGetTarget(out _))
        {
            t_spare = this;
        }
        else
        {
            // Nothing to release: spare the finalizer thread the visit.
            GC.SuppressFinalize(this);
        }
    }

    /// <summary>
    /// Gives back the ticket of the handle whose slot field is
    /// <paramref name="owner"/>, and clears the field; does nothing if it is
    /// clear already. Handles on shared memory release through this, from
    /// any thread and any number of times.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void ReleaseFrom(ref TicketSlot? owner)
    {
        // No interlocked claim: libwhsem lets only one release of a ticket
        // succeed, and only that caller gives the slot back.
        var slot = Volatile.Read(ref owner);
        if (slot is null) { return; }
        var ticket = slot.LentTicket;
        // The slot is lent again only after the field was cleared, and a
        // ticket is stored in it only after that (Lend): if the field still
        // names the slot once the ticket was read, the ticket is this owner's.
        if (Volatile.Read(ref owner) != slot) { return; }
        Volatile.Write(ref owner, null);
        slot.Release(ticket);
    }

    /// <summary>
    /// Releases <paramref name="ticket"/>, the ticket this slot was lent
    /// for, and gives the slot back if this call was the one that released
    /// it. The caller has already made its handle forget the slot.
    /// </summary>
    internal void Release(ulong ticket)
    {
        // The slot is used after the native call on both paths, so the
        // garbage collector cannot finalize it while the call runs.
        // A lost ticket (its PostgreSQL session ended) is released all the
        // same, by this call alone, like one that was held.
        var status = Native.whsem_release(ticket);
        if (status is Native.WHSEM_OK or Native.WHSEM_E_TICKET_LOST)
        {
            Ticket = 0;
            Return();
        }
        else
        {
            // Released by a racing Dispose, which gives the slot back (it
            // may already be lent for another ticket: compare, do not
            // overwrite), or not releasable at all (a forked child, a
            // broken segment): then the slot is dropped, and its finalizer
            // must not try again.
            Interlocked.CompareExchange(ref Ticket, 0, ticket);
        }
    }
}
