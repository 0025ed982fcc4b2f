using System.Runtime.ConstrainedExecution;

namespace LibWhsem.Interop;

/// <summary>
/// Owns one held ticket (whsem_ticket) for a handle, and returns it to the
/// pool through the finalizer if the handle is dropped without Dispose.
/// </summary>
/// <remarks>
/// Tickets are the one libwhsem handle not wrapped in a fresh SafeHandle:
/// allocating a finalizable object per ticket costs about 40 ns, three times
/// the native acquire + release. A slot is finalizable once and reused:
/// Dispose hands it back to a one-entry cache of the disposing thread, where
/// it stays reachable (so its finalizer never runs while it is idle). A slot
/// belongs to at most one handle at a time; the handle gives it up with an
/// atomic exchange, so a slot is never returned twice. A slot that is lost
/// with its handle becomes unreachable and its finalizer releases the
/// ticket, as a SafeHandle's would.
/// </remarks>
internal sealed class TicketSlot : CriticalFinalizerObject
{
    [ThreadStatic] private static TicketSlot? t_spare;

    /// <summary>The held ticket, or 0 while the slot is idle.</summary>
    internal ulong Ticket;

    private TicketSlot() { }

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
        if (t_spare == null)
        {
            t_spare = this;
        }
        else
        {
            // Nothing to release: spare the finalizer thread the visit.
            GC.SuppressFinalize(this);
        }
    }

    /// <summary>Releases the ticket and gives the slot back.</summary>
    internal void ReleaseAndReturn()
    {
        var ticket = Ticket;
        Ticket = 0;
        Native.whsem_release(ticket);
        Return();
    }
}
