// SPDX-License-Identifier: MIT
using LibWhsem.Interop;

namespace Medallion.Threading.WaitHandles;

/// <summary>
/// What every semaphore class of this assembly does to take a ticket: open
/// the semaphore on first use, wait in the native call or through
/// libwhsem's callback, honour the .NET timeout and cancellation
/// conventions, and turn failures into exceptions. The public classes only
/// validate their arguments and wrap the ticket's slot in their handle type.
/// </summary>
internal sealed class SemaphoreCore
{
    /// <summary>The <see cref="ObjectKind"/> of a semaphore.</summary>
    internal const string SemaphoreKind = "semaphore";

    /// <summary>
    /// The <see cref="ObjectKind"/> of EventWaitHandleDistributedLock: a
    /// semaphore with max count 1 under the lock's own name (see there).
    /// </summary>
    internal const string LockKind = "lock";

    private readonly SemaphoreOpenOptions _options;
    private SemaphoreSafeHandle? _semaphore;

    internal SemaphoreCore(string finalName, int maxCount, SemaphoreOpenOptions options, string objectKind = SemaphoreKind)
    {
        Name = finalName;
        MaxCount = maxCount;
        _options = options;
        ObjectKind = objectKind;
    }

    internal string Name { get; }

    internal int MaxCount { get; }

    /// <summary>What the public class is, as its exceptions name it.</summary>
    internal string ObjectKind { get; }

    /// <summary>
    /// A server is a network round trip away: an asynchronous acquisition
    /// must not block its caller on it, neither to open nor to try.
    /// </summary>
    private bool IsRemote => _options.Backend != null;

    /// <summary>
    /// Takes a ticket, waiting in the native call: its slot (the ticket lent
    /// to it), or null when the timeout passed.
    /// </summary>
    internal unsafe TicketSlot? Acquire(int timeoutMs, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var semaphore = _semaphore ?? Open();

        // Rented before the call so that nothing can fail between getting a
        // ticket and giving it an owner.
        var slot = TicketSlot.Rent();
        ulong ticket;
        // A single try cannot be waiting when the token fires, so only a real
        // wait pays for a cancellation source.
        var status = timeoutMs == 0 || !cancellationToken.CanBeCanceled
            ? Native.whsem_acquire(semaphore.Value, timeoutMs, 0, &ticket)
            : AcquireCancelable(semaphore, timeoutMs, cancellationToken, &ticket);
        // Only the finalizer can close the semaphore handle; keep it reachable
        // until the native call is over.
        GC.KeepAlive(semaphore);

        if (status == Native.WHSEM_OK)
        {
            slot.Lend(ticket);
            return slot;
        }
        slot.Return();
        return status == Native.WHSEM_TIMEOUT ? null : throw AcquireFailure(status, cancellationToken);
    }

    private static unsafe int AcquireCancelable(SemaphoreSafeHandle semaphore, int timeoutMs, CancellationToken cancellationToken, ulong* ticket)
    {
        using var cancel = CancelSourceSafeHandle.Create();
        using (cancellationToken.UnsafeRegister(static state => ((CancelSourceSafeHandle)state!).Trigger(), cancel))
        {
            return Native.whsem_acquire(semaphore.Value, timeoutMs, cancel.Value, ticket);
        }
    }

    private Exception AcquireFailure(int status, CancellationToken cancellationToken) =>
        status == Native.WHSEM_CANCELED
            ? new OperationCanceledException(cancellationToken)
            : WhsemErrors.FromLastError(status, $"Acquiring a ticket of '{Name}'");

    /// <summary>
    /// Takes a ticket without blocking the caller on a wait. <paramref name="own"/>
    /// wraps the slot (its ticket lent already) in the caller's handle type;
    /// it runs on libwhsem's callback thread when the ticket came from a wait.
    /// </summary>
    internal unsafe ValueTask<THandle?> AcquireAsync<THandle>(
        int timeoutMs, CancellationToken cancellationToken, bool throwOnTimeout, Func<TicketSlot, THandle> own)
        where THandle : class
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<THandle?>(cancellationToken);
        }
        var timeoutObject = throwOnTimeout ? ObjectKind : null;
        if (IsRemote)
        {
            return _semaphore is { } open
                ? new(PendingAcquire<THandle>.Start(open, timeoutMs, cancellationToken, timeoutObject, own))
                : OpenThenAcquireAsync(timeoutMs, cancellationToken, timeoutObject, own);
        }

        SemaphoreSafeHandle semaphore;
        ulong ticket;
        int status;
        try
        {
            semaphore = _semaphore ?? Open();
            // A free ticket is taken right here, with no task or callback.
            var slot = TicketSlot.Rent();
            status = Native.whsem_acquire(semaphore.Value, 0, 0, &ticket);
            GC.KeepAlive(semaphore);
            if (status == Native.WHSEM_OK)
            {
                slot.Lend(ticket);
                return new(own(slot));
            }
            slot.Return();
            switch (status)
            {
                case Native.WHSEM_TIMEOUT when timeoutMs == 0:
                    return throwOnTimeout
                        ? ValueTask.FromException<THandle?>(Timeouts.Expired(ObjectKind))
                        : new((THandle?)null);
                case Native.WHSEM_TIMEOUT:
                    break;
                default:
                    throw AcquireFailure(status, cancellationToken);
            }
        }
        catch (Exception e)
        {
            return ValueTask.FromException<THandle?>(e);
        }

        return new(PendingAcquire<THandle>.Start(semaphore, timeoutMs, cancellationToken, timeoutObject, own));
    }

    private async ValueTask<THandle?> OpenThenAcquireAsync<THandle>(
        int timeoutMs, CancellationToken cancellationToken, string? timeoutObject, Func<TicketSlot, THandle> own)
        where THandle : class
    {
        // Connecting and registering the name are blocking native calls.
        var semaphore = await Task.Run(Open, cancellationToken).ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
        return await PendingAcquire<THandle>.Start(semaphore, timeoutMs, cancellationToken, timeoutObject, own).ConfigureAwait(false);
    }

    private SemaphoreSafeHandle Open()
    {
        SemaphoreSafeHandle opened;
        try
        {
            opened = SemaphoreSafeHandle.Open(Name, MaxCount, _options);
        }
        catch (InvalidOperationException e) when (ObjectKind == LockKind && WhsemErrors.HasStatus(e, Native.WHSEM_E_MAX_COUNT_MISMATCH))
        {
            // A lock is the max-1 semaphore of its name, so this is a
            // semaphore of that name, open elsewhere. Windows keeps events
            // and semaphores in one namespace and refuses the second type
            // with this exception; a lock here fails the same way.
            throw WhsemErrors.Tag(
                new WaitHandleCannotBeOpenedException(
                    $"The lock '{Name}' cannot be opened: a semaphore of that name with a max count other than 1 is in use. {e.Message}", e),
                Native.WHSEM_E_MAX_COUNT_MISMATCH);
        }
        var winner = Interlocked.CompareExchange(ref _semaphore, opened, null);
        if (winner != null)
        {
            opened.Dispose();
            return winner;
        }
        return opened;
    }

    /// <summary>The shared state of the name, opened first if need be.</summary>
    internal unsafe global::LibWhsem.WhsemState Query()
    {
        var semaphore = _semaphore ?? Open();
        var info = new whsem_info { struct_size = (uint)sizeof(whsem_info) };
        nuint holders;
        var status = Native.whsem_query(semaphore.Value, &info, null, 0, &holders);
        GC.KeepAlive(semaphore);
        return status == Native.WHSEM_OK
            ? new global::LibWhsem.WhsemState(in info)
            : throw WhsemErrors.FromLastError(status, $"Reading the state of '{Name}'");
    }

    // The four methods of IDistributedSemaphore for a class whose handles
    // `own` makes, with their TimeSpan arguments checked.

    internal THandle? TryAcquire<THandle>(TimeSpan timeout, CancellationToken cancellationToken, Func<TicketSlot, THandle> own)
        where THandle : class =>
        TryAcquireFor(Timeouts.ToMilliseconds(timeout, nameof(timeout)), cancellationToken, own);

    internal THandle Acquire<THandle>(TimeSpan? timeout, CancellationToken cancellationToken, Func<TicketSlot, THandle> own)
        where THandle : class =>
        TryAcquireFor(Timeouts.ToMilliseconds(timeout, nameof(timeout)), cancellationToken, own) ?? throw Timeouts.Expired(ObjectKind);

    internal ValueTask<THandle?> TryAcquireAsync<THandle>(TimeSpan timeout, CancellationToken cancellationToken, Func<TicketSlot, THandle> own)
        where THandle : class =>
        AcquireAsync(Timeouts.ToMilliseconds(timeout, nameof(timeout)), cancellationToken, throwOnTimeout: false, own);

    internal ValueTask<THandle> AcquireAsync<THandle>(TimeSpan? timeout, CancellationToken cancellationToken, Func<TicketSlot, THandle> own)
        where THandle : class =>
        AcquireAsync(Timeouts.ToMilliseconds(timeout, nameof(timeout)), cancellationToken, throwOnTimeout: true, own)!;

    private THandle? TryAcquireFor<THandle>(int timeoutMs, CancellationToken cancellationToken, Func<TicketSlot, THandle> own)
        where THandle : class =>
        Acquire(timeoutMs, cancellationToken) is { } slot ? own(slot) : null;

    /// <summary>The handle task of the interface methods, typed as the interface's.</summary>
    internal static ValueTask<IDistributedSynchronizationHandle?> Upcast<THandle>(ValueTask<THandle?> task)
        where THandle : class, IDistributedSynchronizationHandle
    {
        if (task.IsCompletedSuccessfully) { return new(task.Result); }
        return Await(task);

        static async ValueTask<IDistributedSynchronizationHandle?> Await(ValueTask<THandle?> task) =>
            await task.ConfigureAwait(false);
    }
}

/// <summary>
/// How a semaphore is opened (whsem_open_options): <see cref="Backend"/> is
/// null for this machine, or a libpq connection string; the periods are in
/// milliseconds, 0 for libwhsem's default and -1 for never.
/// </summary>
internal readonly record struct SemaphoreOpenOptions(int AbandonmentCheckMs, string? Backend = null, int ConnectionCheckMs = 0);
