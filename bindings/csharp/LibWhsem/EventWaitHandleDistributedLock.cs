// SPDX-License-Identifier: MIT
using LibWhsem.Interop;

namespace Medallion.Threading.WaitHandles;

/// <summary>
/// A lock that every process on this machine shares by name: one holder at a
/// time, in whichever process. It has the shape of DistributedLock's
/// Windows-only lock, which is built on a named <see cref="EventWaitHandle"/>,
/// and runs on libwhsem, on Linux too.
/// </summary>
/// <remarks>
/// <para>
/// A lock is not re-entrant: a second acquisition, even from the thread that
/// holds the lock, waits like any other until the holder disposes its handle
/// (with no timeout, forever). The constructor only checks its arguments; the
/// first acquisition opens the name, and the instance keeps it open.
/// </para>
/// <para>
/// Underneath, the lock is libwhsem's semaphore of max count 1 under the
/// lock's finalized <see cref="Name"/>, so <c>whsem status</c> shows it and a
/// program in another language takes the same lock by opening that name with
/// max count 1. On Windows, named events and semaphores share one namespace,
/// and the original cannot open a lock while a semaphore of the same name
/// exists (and the reverse). Here the conflict shows where the two differ in
/// size: opening the lock while a process has a semaphore of that name open
/// with another max count throws <see cref="WaitHandleCannotBeOpenedException"/>,
/// the original's exception. A <see cref="WaitHandleDistributedSemaphore"/> of
/// max count 1 with the same name is the same object as the lock.
/// </para>
/// <code>
/// var nightly = new EventWaitHandleDistributedLock("nightly-report");
/// using (var held = nightly.TryAcquire())
/// {
///     if (held is null) { return; }   // another process is writing it right now
///     WriteReport();
/// }
/// </code>
/// </remarks>
public sealed class EventWaitHandleDistributedLock : IDistributedLock
{
    private static readonly Func<TicketSlot, EventWaitHandleDistributedLockHandle> s_own = static slot => new(slot);
    private readonly SemaphoreCore _core;

    internal SemaphoreCore Core => _core;

    /// <summary>Describes a lock; nothing outside this process is touched until the first acquisition.</summary>
    /// <param name="name">
    /// What the lock is called, made valid as for <see cref="WaitHandleDistributedSemaphore"/>
    /// (<c>"jobs"</c> becomes <c>Global\jobs</c>), unless <paramref name="exactName"/>.
    /// </param>
    /// <param name="abandonmentCheckCadence">
    /// The period at which waiting acquisitions look for a holder that died
    /// without letting go, whose lock then passes on. Null takes libwhsem's
    /// period, 100 ms; <see cref="Timeout.InfiniteTimeSpan"/> looks only when
    /// a process is found to have died while it was changing the lock's state.
    /// </param>
    /// <param name="exactName">Take <paramref name="name"/> as it is: it must already be a valid name, <c>Global\</c> followed by 1 to 253 characters, none of them <c>\</c>.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="abandonmentCheckCadence"/> is zero, negative but not infinite, or above <see cref="int.MaxValue"/> milliseconds.</exception>
    /// <exception cref="FormatException"><paramref name="exactName"/> is true and <paramref name="name"/> breaks one of the rules for a valid name.</exception>
    /// <exception cref="ArgumentException">The name that results contains a NUL character, which libwhsem names cannot hold.</exception>
    public EventWaitHandleDistributedLock(string name, TimeSpan? abandonmentCheckCadence = null, bool exactName = false)
    {
        _core = new SemaphoreCore(
            SemaphoreNames.ValidateAndFinalize(name, exactName),
            maxCount: 1,
            new SemaphoreOpenOptions(Timeouts.ToCadenceMilliseconds(abandonmentCheckCadence, nameof(abandonmentCheckCadence))),
            SemaphoreCore.LockKind);
    }

    /// <summary>The name under which the lock is shared (<see cref="IDistributedLock.Name"/>), computed as the original does.</summary>
    public string Name => _core.Name;

    /// <summary>
    /// Takes the lock if it is free, or frees up within <paramref name="timeout"/>,
    /// blocking the calling thread meanwhile.
    /// </summary>
    /// <param name="timeout">The longest wait; by default none at all, one look only. <see cref="Timeout.InfiniteTimeSpan"/> waits for as long as it takes.</param>
    /// <param name="cancellationToken">Ends the wait with <see cref="OperationCanceledException"/>; already cancelled, it wins even over a free lock.</param>
    /// <returns>The held lock, to dispose when done; null when the time ran out.</returns>
    /// <exception cref="WaitHandleCannotBeOpenedException">A semaphore of this name with a max count other than 1 is open.</exception>
    public EventWaitHandleDistributedLockHandle? TryAcquire(TimeSpan timeout = default, CancellationToken cancellationToken = default) =>
        _core.TryAcquire(timeout, cancellationToken, s_own);

    /// <summary>
    /// Takes the lock, blocking the calling thread until it is free, and throws
    /// <see cref="TimeoutException"/> if it did not free up within <paramref name="timeout"/>.
    /// </summary>
    /// <param name="timeout">The longest wait; null (the default) waits for as long as it takes.</param>
    /// <param name="cancellationToken">Ends the wait with <see cref="OperationCanceledException"/>; already cancelled, it wins even over a free lock.</param>
    /// <returns>The held lock, to dispose when done.</returns>
    /// <exception cref="WaitHandleCannotBeOpenedException">A semaphore of this name with a max count other than 1 is open.</exception>
    public EventWaitHandleDistributedLockHandle Acquire(TimeSpan? timeout = null, CancellationToken cancellationToken = default) =>
        _core.Acquire(timeout, cancellationToken, s_own);

    /// <summary>
    /// <see cref="TryAcquire"/> for asynchronous code: a free lock is taken at
    /// once, and a wait occupies no thread.
    /// </summary>
    /// <param name="timeout">The longest wait; by default none at all, one look only. <see cref="Timeout.InfiniteTimeSpan"/> waits for as long as it takes.</param>
    /// <param name="cancellationToken">Cancels the task; already cancelled, it wins even over a free lock.</param>
    /// <returns>The held lock, to dispose when done; null when the time ran out.</returns>
    public ValueTask<EventWaitHandleDistributedLockHandle?> TryAcquireAsync(TimeSpan timeout = default, CancellationToken cancellationToken = default) =>
        _core.TryAcquireAsync(timeout, cancellationToken, s_own);

    /// <summary>
    /// <see cref="Acquire"/> for asynchronous code: a free lock is taken at
    /// once, and a wait occupies no thread. The task fails with
    /// <see cref="TimeoutException"/> if the lock did not free up within <paramref name="timeout"/>.
    /// </summary>
    /// <param name="timeout">The longest wait; null (the default) waits for as long as it takes.</param>
    /// <param name="cancellationToken">Cancels the task; already cancelled, it wins even over a free lock.</param>
    /// <returns>The held lock, to dispose when done.</returns>
    public ValueTask<EventWaitHandleDistributedLockHandle> AcquireAsync(TimeSpan? timeout = null, CancellationToken cancellationToken = default) =>
        _core.AcquireAsync(timeout, cancellationToken, s_own);

    IDistributedSynchronizationHandle? IDistributedLock.TryAcquire(TimeSpan timeout, CancellationToken cancellationToken) =>
        TryAcquire(timeout, cancellationToken);

    IDistributedSynchronizationHandle IDistributedLock.Acquire(TimeSpan? timeout, CancellationToken cancellationToken) =>
        Acquire(timeout, cancellationToken);

    ValueTask<IDistributedSynchronizationHandle?> IDistributedLock.TryAcquireAsync(TimeSpan timeout, CancellationToken cancellationToken) =>
        SemaphoreCore.Upcast(TryAcquireAsync(timeout, cancellationToken));

    ValueTask<IDistributedSynchronizationHandle> IDistributedLock.AcquireAsync(TimeSpan? timeout, CancellationToken cancellationToken) =>
        SemaphoreCore.Upcast<EventWaitHandleDistributedLockHandle>(AcquireAsync(timeout, cancellationToken)!)!;
}
