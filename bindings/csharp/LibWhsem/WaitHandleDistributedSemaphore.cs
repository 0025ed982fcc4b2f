// SPDX-License-Identifier: MIT
using LibWhsem.Interop;

namespace Medallion.Threading.WaitHandles;

/// <summary>
/// A counting semaphore that every process on this machine shares by name:
/// however many processes use <see cref="Name"/>, together they never hold
/// more than <see cref="MaxCount"/> of its tickets. It has the shape of
/// DistributedLock's Windows-only class of this name and runs on libwhsem,
/// on Linux too.
/// </summary>
/// <remarks>
/// <para>
/// Instances that agree on <see cref="Name"/> and <see cref="MaxCount"/>
/// draw on the same tickets, in this process or any other, whichever
/// libwhsem binding that process uses. The constructor only checks its
/// arguments; the first acquisition opens the name (creating it if nobody
/// has), and the instance keeps it open from then on.
/// </para>
/// <para>Taking a ticket and giving it back:</para>
/// <code>
/// var printers = new WaitHandleDistributedSemaphore("printers", maxCount: 2);
/// await using (var ticket = await printers.TryAcquireAsync(TimeSpan.FromSeconds(5)))
/// {
///     if (ticket is null) { return; }          // both printers stayed busy for 5 s
///     await PrintAsync(document);              // at most 2 processes get here at once
/// }                                            // the ticket goes back here
/// </code>
/// </remarks>
public sealed partial class WaitHandleDistributedSemaphore : IDistributedSemaphore
{
    private static readonly Func<TicketSlot, WaitHandleDistributedSemaphoreHandle> s_own = static slot => new(slot);
    private readonly SemaphoreCore _core;

    internal SemaphoreCore Core => _core;

    /// <summary>Describes a semaphore; nothing outside this process is touched until the first acquisition.</summary>
    /// <param name="name">
    /// What the semaphore is called. It is turned into a valid name the way the
    /// original does it (see <see cref="Name"/>), unless <paramref name="exactName"/>.
    /// </param>
    /// <param name="maxCount">The number of tickets; every user of the name must pass the same.</param>
    /// <param name="abandonmentCheckCadence">
    /// The period at which waiting acquisitions look for holders that died
    /// with tickets, which then go back to the pool. Null takes libwhsem's
    /// period, 100 ms; <see cref="Timeout.InfiniteTimeSpan"/> looks only when
    /// a process is found to have died while it was changing the semaphore.
    /// </param>
    /// <param name="exactName">Take <paramref name="name"/> as it is: it must already be a valid name, <c>Global\</c> followed by 1 to 253 characters, none of them <c>\</c>.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxCount"/> is 0 or less, or <paramref name="abandonmentCheckCadence"/> is zero, negative but not infinite, or above <see cref="int.MaxValue"/> milliseconds.</exception>
    /// <exception cref="FormatException"><paramref name="exactName"/> is true and <paramref name="name"/> breaks one of the rules for a valid name.</exception>
    /// <exception cref="ArgumentException">The name that results contains a NUL character, which libwhsem names cannot hold.</exception>
    public WaitHandleDistributedSemaphore(string name, int maxCount, TimeSpan? abandonmentCheckCadence = null, bool exactName = false)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxCount);
        _core = new SemaphoreCore(
            SemaphoreNames.ValidateAndFinalize(name, exactName),
            maxCount,
            new SemaphoreOpenOptions(Timeouts.ToCadenceMilliseconds(abandonmentCheckCadence, nameof(abandonmentCheckCadence))));
    }

    /// <summary>
    /// The name under which the semaphore is shared (<see cref="IDistributedSemaphore.Name"/>),
    /// character for character the one the original computes: <c>"jobs"</c>
    /// becomes <c>Global\jobs</c>, and a name that could not be used as it is
    /// gets a SHA-512 hash in place of its tail.
    /// </summary>
    public string Name => _core.Name;

    /// <summary>The number of tickets (<see cref="IDistributedSemaphore.MaxCount"/>).</summary>
    public int MaxCount => _core.MaxCount;

    /// <summary>
    /// Takes a ticket if one frees up within <paramref name="timeout"/>,
    /// blocking the calling thread meanwhile.
    /// </summary>
    /// <param name="timeout">The longest wait; by default none at all, one look only. <see cref="Timeout.InfiniteTimeSpan"/> waits for as long as it takes.</param>
    /// <param name="cancellationToken">Ends the wait with <see cref="OperationCanceledException"/>; already cancelled, it wins even over a free ticket.</param>
    /// <returns>The ticket, to dispose when done; null when the time ran out.</returns>
    public WaitHandleDistributedSemaphoreHandle? TryAcquire(TimeSpan timeout = default, CancellationToken cancellationToken = default) =>
        Own(_core.Acquire(Timeouts.ToMilliseconds(timeout, nameof(timeout)), cancellationToken));

    /// <summary>
    /// Takes a ticket, blocking the calling thread until one frees up, and
    /// throws <see cref="TimeoutException"/> if none did within <paramref name="timeout"/>.
    /// </summary>
    /// <param name="timeout">The longest wait; null (the default) waits for as long as it takes.</param>
    /// <param name="cancellationToken">Ends the wait with <see cref="OperationCanceledException"/>; already cancelled, it wins even over a free ticket.</param>
    /// <returns>The ticket, to dispose when done.</returns>
    public WaitHandleDistributedSemaphoreHandle Acquire(TimeSpan? timeout = null, CancellationToken cancellationToken = default) =>
        Own(_core.Acquire(Timeouts.ToMilliseconds(timeout, nameof(timeout)), cancellationToken)) ?? throw Timeouts.Expired(_core.ObjectKind);

    /// <summary>
    /// <see cref="TryAcquire"/> for asynchronous code: a free ticket is taken
    /// at once, and a wait occupies no thread.
    /// </summary>
    /// <param name="timeout">The longest wait; by default none at all, one look only. <see cref="Timeout.InfiniteTimeSpan"/> waits for as long as it takes.</param>
    /// <param name="cancellationToken">Cancels the task; already cancelled, it wins even over a free ticket.</param>
    /// <returns>The ticket, to dispose when done; null when the time ran out.</returns>
    public ValueTask<WaitHandleDistributedSemaphoreHandle?> TryAcquireAsync(TimeSpan timeout = default, CancellationToken cancellationToken = default) =>
        _core.AcquireAsync(Timeouts.ToMilliseconds(timeout, nameof(timeout)), cancellationToken, throwOnTimeout: false, s_own);

    /// <summary>
    /// <see cref="Acquire"/> for asynchronous code: a free ticket is taken at
    /// once, and a wait occupies no thread. The task fails with
    /// <see cref="TimeoutException"/> if no ticket came within <paramref name="timeout"/>.
    /// </summary>
    /// <param name="timeout">The longest wait; null (the default) waits for as long as it takes.</param>
    /// <param name="cancellationToken">Cancels the task; already cancelled, it wins even over a free ticket.</param>
    /// <returns>The ticket, to dispose when done.</returns>
    public ValueTask<WaitHandleDistributedSemaphoreHandle> AcquireAsync(TimeSpan? timeout = null, CancellationToken cancellationToken = default) =>
        _core.AcquireAsync(Timeouts.ToMilliseconds(timeout, nameof(timeout)), cancellationToken, throwOnTimeout: true, s_own)!;

    IDistributedSynchronizationHandle? IDistributedSemaphore.TryAcquire(TimeSpan timeout, CancellationToken cancellationToken) =>
        TryAcquire(timeout, cancellationToken);

    IDistributedSynchronizationHandle IDistributedSemaphore.Acquire(TimeSpan? timeout, CancellationToken cancellationToken) =>
        Acquire(timeout, cancellationToken);

    ValueTask<IDistributedSynchronizationHandle?> IDistributedSemaphore.TryAcquireAsync(TimeSpan timeout, CancellationToken cancellationToken) =>
        SemaphoreCore.Upcast(TryAcquireAsync(timeout, cancellationToken));

    ValueTask<IDistributedSynchronizationHandle> IDistributedSemaphore.AcquireAsync(TimeSpan? timeout, CancellationToken cancellationToken) =>
        SemaphoreCore.Upcast(_core.AcquireAsync(Timeouts.ToMilliseconds(timeout, nameof(timeout)), cancellationToken, throwOnTimeout: true, s_own))!;

    // The synchronous methods wrap the slot here rather than through the
    // core's TimeSpan overloads: on shared memory a pair costs about 30 ns,
    // and the delegate call those take would be measurable in it.
    private static WaitHandleDistributedSemaphoreHandle? Own(TicketSlot? slot) => slot is null ? null : new(slot);
}
