// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using LibWhsem.Interop;

namespace Medallion.Threading.WaitHandles;

/// <summary>
/// One asynchronous acquisition in flight. libwhsem completes it by calling
/// <see cref="AcquireCallback.OnCompleted"/> once, on a library thread; no
/// .NET thread waits for it, so any number of pending acquisitions cost no
/// threads.
/// </summary>
/// <remarks>
/// The object is rooted by the GCHandle passed as user data until that call
/// (which frees it), and it roots the semaphore handle, so a pending wait is
/// never canceled by the garbage collector closing its semaphore.
/// </remarks>
internal sealed unsafe class PendingAcquire<THandle> : TaskCompletionSource<THandle?>, IPendingAcquire
    where THandle : class
{
    private readonly SemaphoreSafeHandle _semaphore;
    private readonly Func<TicketSlot, THandle> _own;
    private readonly CancellationToken _cancellationToken;
    private readonly string? _timeoutObject;
    private readonly OpSafeHandle _op = new();
    private CancellationTokenRegistration _registration;
    private bool _completed; // guarded by this

    private PendingAcquire(SemaphoreSafeHandle semaphore, CancellationToken cancellationToken, string? timeoutObject, Func<TicketSlot, THandle> own)
        // Continuations must not run on the library's callback thread.
        : base(TaskCreationOptions.RunContinuationsAsynchronously)
    {
        _semaphore = semaphore;
        _own = own;
        _cancellationToken = cancellationToken;
        _timeoutObject = timeoutObject;
    }

    /// <summary>
    /// Starts the acquisition; <paramref name="own"/> wraps the slot of the
    /// ticket it gets (lent already) in the caller's handle type. When the
    /// timeout passes, the task ends with null if <paramref name="timeoutObject"/>
    /// is null, else with the <see cref="TimeoutException"/> that names it.
    /// </summary>
    internal static Task<THandle?> Start(
        SemaphoreSafeHandle semaphore, int timeoutMs, CancellationToken cancellationToken, string? timeoutObject, Func<TicketSlot, THandle> own)
    {
        var pending = new PendingAcquire<THandle>(semaphore, cancellationToken, timeoutObject, own);
        var root = GCHandle.Alloc(pending);
        ulong op;
        int status = Native.whsem_acquire_async(
            semaphore.Value, timeoutMs, 0, &AcquireCallback.OnCompleted, (void*)GCHandle.ToIntPtr(root), &op);
        if (status != Native.WHSEM_OK)
        {
            // No operation was created, so no callback will come.
            var error = WhsemErrors.FromLastError(status, "Starting an asynchronous acquisition");
            root.Free();
            pending._op.Dispose();
            return System.Threading.Tasks.Task.FromException<THandle?>(error);
        }

        bool completedAlready;
        lock (pending)
        {
            pending._op.SetValue(op);
            completedAlready = pending._completed;
        }
        if (completedAlready)
        {
            // The callback ran before the handle was known: it left the free to us.
            pending._op.Dispose();
            return pending.Task;
        }

        if (cancellationToken.CanBeCanceled)
        {
            // Runs CancelOperation at once if the token is already canceled.
            var registration = cancellationToken.UnsafeRegister(static state => ((PendingAcquire<THandle>)state!)._op.Cancel(), pending);
            bool keep;
            lock (pending)
            {
                keep = !pending._completed;
                if (keep) { pending._registration = registration; }
            }
            if (!keep) { registration.Unregister(); }
        }
        return pending.Task;
    }

    void IPendingAcquire.Fail(Exception error) => TrySetException(error);

    void IPendingAcquire.Complete(ulong op, int status)
    {
        // The ticket is taken before the operation can be freed (by whichever
        // side sees the other done), because freeing an operation releases a
        // ticket nobody took.
        THandle? handle = null;
        Exception? error = null;
        if (status == Native.WHSEM_OK)
        {
            var slot = TicketSlot.Rent();
            ulong ticket;
            var taken = Native.whsem_op_take_ticket(op, &ticket);
            if (taken == Native.WHSEM_OK)
            {
                // Lent before the handle is allocated, so that even an
                // OutOfMemoryException leaves the ticket to the slot's finalizer.
                slot.Lend(ticket);
                handle = _own(slot);
            }
            else
            {
                slot.Return();
                error = WhsemErrors.FromLastError(taken, "Taking the ticket of an asynchronous acquisition");
            }
        }
        else if (status < 0)
        {
            // The operation keeps the message of how it ended (libwhsem 1.1),
            // and polling it makes that message this thread's.
            var polled = Native.whsem_op_poll(op);
            var detail = polled == status ? WhsemErrors.LastError() : "";
            error = WhsemErrors.Create(status, detail, "Asynchronous acquisition");
        }

        bool freeHere;
        CancellationTokenRegistration registration;
        lock (this)
        {
            _completed = true;
            freeHere = !_op.IsInvalid;
            registration = _registration;
            _registration = default;
        }
        // Unregister, not Dispose: it does not wait for a cancel running on
        // another thread, which the op handle's reference count makes safe.
        registration.Unregister();
        if (freeHere) { _op.Dispose(); }

        if (handle != null)
        {
            // A grant that raced with cancellation still delivers the ticket:
            // returning it is better than dropping a ticket the caller paid for.
            TrySetResult(handle);
        }
        else if (error != null)
        {
            TrySetException(error);
        }
        else if (status == Native.WHSEM_TIMEOUT)
        {
            if (_timeoutObject != null) { TrySetException(Timeouts.Expired(_timeoutObject)); }
            else { TrySetResult(null); }
        }
        else
        {
            // WHSEM_CANCELED: only our registration cancels the operation.
            TrySetCanceled(_cancellationToken.IsCancellationRequested ? _cancellationToken : new CancellationToken(canceled: true));
        }
        // The semaphore had to stay open until now (closing it would have
        // canceled the operation); from here on it may go.
        GC.KeepAlive(_semaphore);
    }
}

/// <summary>What <see cref="AcquireCallback"/> calls on an acquisition of any handle type.</summary>
internal interface IPendingAcquire
{
    void Complete(ulong op, int status);

    void Fail(Exception error);
}

/// <summary>
/// libwhsem's callback for every asynchronous acquisition (a callback that
/// native code calls cannot live in a generic type).
/// </summary>
internal static unsafe class AcquireCallback
{
    [UnmanagedCallersOnly(CallConvs = new[] { typeof(CallConvCdecl) })]
    internal static void OnCompleted(ulong op, int status, void* userData)
    {
        // Nothing may escape into the library's thread: every failure goes
        // to the awaiting task.
        IPendingAcquire? pending = null;
        try
        {
            var root = GCHandle.FromIntPtr((IntPtr)userData);
            pending = (IPendingAcquire)root.Target!;
            root.Free();
            pending.Complete(op, status);
        }
        catch (Exception e)
        {
            pending?.Fail(e);
        }
    }
}
