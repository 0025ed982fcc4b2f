// SPDX-License-Identifier: MIT
using LibWhsem.Interop;

namespace Medallion.Threading.WaitHandles;

/// <summary>
/// A distributed semaphore: at most <see cref="MaxCount"/> tickets of the
/// semaphore called <see cref="Name"/> are held at any time, across every
/// process on the machine. The Linux implementation of DistributedLock's
/// <c>WaitHandleDistributedSemaphore</c>, on top of libwhsem.
/// </summary>
/// <remarks>
/// Every instance with the same <see cref="Name"/> and <see cref="MaxCount"/>,
/// in any process (and any language binding of libwhsem), shares one pool
/// of tickets. Constructing an instance touches nothing outside this
/// process; the semaphore is opened (created if needed) by the first
/// acquisition and stays open for the instance's lifetime.
/// </remarks>
public sealed partial class WaitHandleDistributedSemaphore : IDistributedSemaphore
{
    private static readonly Func<TicketSlot, WaitHandleDistributedSemaphoreHandle> s_own = static slot => new(slot);
    private readonly SemaphoreCore _core;

    /// <summary>
    /// Constructs a semaphore with the given <paramref name="name"/> and
    /// <paramref name="maxCount"/>.
    ///
    /// <paramref name="abandonmentCheckCadence"/> is how often waiters look
    /// for holders that died without releasing: their tickets return to the
    /// pool within that time. The default is libwhsem's (100 ms).
    /// <see cref="Timeout.InfiniteTimeSpan"/> checks only when a holder is
    /// found dead while the semaphore's state is updated.
    ///
    /// Unless <paramref name="exactName"/> is specified, <paramref name="name"/>
    /// will be escaped/hashed to ensure name validity, exactly as on Windows.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxCount"/> is below 1, or <paramref name="abandonmentCheckCadence"/> is zero, negative (other than infinite) or too large.</exception>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> is null.</exception>
    /// <exception cref="FormatException"><paramref name="exactName"/> is set and <paramref name="name"/> is not a valid name.</exception>
    /// <exception cref="ArgumentException">The finalized name contains '\0', which a Linux name cannot.</exception>
    public WaitHandleDistributedSemaphore(string name, int maxCount, TimeSpan? abandonmentCheckCadence = null, bool exactName = false)
    {
        if (maxCount < 1) { throw new ArgumentOutOfRangeException(nameof(maxCount), maxCount, "must be positive"); }

        _core = new SemaphoreCore(
            SemaphoreNames.ValidateAndFinalize(name, exactName),
            maxCount,
            new SemaphoreOpenOptions(Timeouts.ToCadenceMilliseconds(abandonmentCheckCadence, nameof(abandonmentCheckCadence))));
    }

    /// <summary>
    /// Implements <see cref="IDistributedSemaphore.Name"/>: the finalized
    /// name, e.g. <c>Global\abc</c> for "abc".
    /// </summary>
    public string Name => _core.Name;

    /// <summary>Implements <see cref="IDistributedSemaphore.MaxCount"/>.</summary>
    public int MaxCount => _core.MaxCount;

    /// <summary>
    /// Attempts to acquire a semaphore ticket synchronously. Usage:
    /// <code>
    ///     using (var handle = mySemaphore.TryAcquire(...))
    ///     {
    ///         if (handle != null) { /* we have the ticket! */ }
    ///     }
    ///     // dispose releases the ticket if we took it
    /// </code>
    /// </summary>
    /// <param name="timeout">How long to wait before giving up on the acquisition attempt. Defaults to 0</param>
    /// <param name="cancellationToken">Specifies a token by which the wait can be canceled</param>
    /// <returns>A <see cref="WaitHandleDistributedSemaphoreHandle"/> which can be used to release the ticket or null on failure</returns>
    public WaitHandleDistributedSemaphoreHandle? TryAcquire(TimeSpan timeout = default, CancellationToken cancellationToken = default) =>
        Own(_core.Acquire(Timeouts.ToMilliseconds(timeout, nameof(timeout)), cancellationToken));

    /// <summary>
    /// Acquires a semaphore ticket synchronously, failing with <see cref="TimeoutException"/> if the attempt times out. Usage:
    /// <code>
    ///     using (mySemaphore.Acquire(...))
    ///     {
    ///         /* we have the ticket! */
    ///     }
    ///     // dispose releases the ticket
    /// </code>
    /// </summary>
    /// <param name="timeout">How long to wait before giving up on the acquisition attempt. Defaults to <see cref="Timeout.InfiniteTimeSpan"/></param>
    /// <param name="cancellationToken">Specifies a token by which the wait can be canceled</param>
    /// <returns>A <see cref="WaitHandleDistributedSemaphoreHandle"/> which can be used to release the ticket</returns>
    public WaitHandleDistributedSemaphoreHandle Acquire(TimeSpan? timeout = null, CancellationToken cancellationToken = default) =>
        Own(_core.Acquire(Timeouts.ToMilliseconds(timeout, nameof(timeout)), cancellationToken)) ?? throw Timeouts.SemaphoreTimeout();

    /// <summary>
    /// Attempts to acquire a semaphore ticket asynchronously. Usage:
    /// <code>
    ///     await using (var handle = await mySemaphore.TryAcquireAsync(...))
    ///     {
    ///         if (handle != null) { /* we have the ticket! */ }
    ///     }
    ///     // dispose releases the ticket if we took it
    /// </code>
    /// </summary>
    /// <param name="timeout">How long to wait before giving up on the acquisition attempt. Defaults to 0</param>
    /// <param name="cancellationToken">Specifies a token by which the wait can be canceled</param>
    /// <returns>A <see cref="WaitHandleDistributedSemaphoreHandle"/> which can be used to release the ticket or null on failure</returns>
    public ValueTask<WaitHandleDistributedSemaphoreHandle?> TryAcquireAsync(TimeSpan timeout = default, CancellationToken cancellationToken = default) =>
        _core.AcquireAsync(Timeouts.ToMilliseconds(timeout, nameof(timeout)), cancellationToken, throwOnTimeout: false, s_own);

    /// <summary>
    /// Acquires a semaphore ticket asynchronously, failing with <see cref="TimeoutException"/> if the attempt times out. Usage:
    /// <code>
    ///     await using (await mySemaphore.AcquireAsync(...))
    ///     {
    ///         /* we have the ticket! */
    ///     }
    ///     // dispose releases the ticket
    /// </code>
    /// </summary>
    /// <param name="timeout">How long to wait before giving up on the acquisition attempt. Defaults to <see cref="Timeout.InfiniteTimeSpan"/></param>
    /// <param name="cancellationToken">Specifies a token by which the wait can be canceled</param>
    /// <returns>A <see cref="WaitHandleDistributedSemaphoreHandle"/> which can be used to release the ticket</returns>
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
