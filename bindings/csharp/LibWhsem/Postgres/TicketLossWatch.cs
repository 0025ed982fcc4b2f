// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using LibWhsem.Interop;

namespace Medallion.Threading.Postgres;

/// <summary>
/// A <see cref="CancellationToken"/> that libwhsem cancels when a ticket is
/// lost (whsem_ticket_watch): the PostgreSQL session carrying it ended while
/// its holder lived, and the server has given the ticket away.
/// </summary>
/// <remarks>
/// The watch's callback comes exactly once, on a library thread: with
/// WHSEM_E_TICKET_LOST, or with WHSEM_OK once the ticket was released
/// without loss. So the GCHandle that carries the token's source to it is
/// freed there, once, whatever happens to the handle. The source is all it
/// roots: a dropped handle stays collectable, and its slot's finalizer
/// releases the ticket (which ends the watch).
/// </remarks>
internal static unsafe class TicketLossWatch
{
    /// <summary>
    /// Starts watching <paramref name="ticket"/>, held by the caller for the
    /// whole call: the token that is cancelled when it is lost, or
    /// <see cref="CancellationToken.None"/> for a ticket that cannot be lost.
    /// </summary>
    internal static CancellationToken Start(ulong ticket)
    {
        var lost = new CancellationTokenSource();
        var root = GCHandle.Alloc(lost);
        var status = Native.whsem_ticket_watch(ticket, 0, &OnEnded, (void*)GCHandle.ToIntPtr(root));
        if (status == Native.WHSEM_OK) { return lost.Token; }

        // Nothing was registered: no callback will come.
        var error = status == Native.WHSEM_E_UNSUPPORTED ? null : WhsemErrors.FromLastError(status, "Watching a ticket for loss");
        root.Free();
        lost.Dispose();
        return error == null ? CancellationToken.None : throw error;
    }

    [UnmanagedCallersOnly(CallConvs = new[] { typeof(CallConvCdecl) })]
    private static void OnEnded(ulong ticket, int status, void* userData)
    {
        try
        {
            var root = GCHandle.FromIntPtr((IntPtr)userData);
            var lost = (CancellationTokenSource)root.Target!;
            root.Free();
            if (status == Native.WHSEM_E_TICKET_LOST)
            {
                // The token reads as cancelled at once; the callbacks the
                // application registered run on the thread pool, so none
                // of them can hold up libwhsem's thread.
                _ = lost.CancelAsync();
            }
        }
        catch (Exception)
        {
            // Nothing may escape into the library's thread.
        }
    }
}
