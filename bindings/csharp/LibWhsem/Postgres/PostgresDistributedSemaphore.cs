// SPDX-License-Identifier: MIT
using LibWhsem.Interop;
using Medallion.Threading.WaitHandles;

namespace Medallion.Threading.Postgres;

/// <summary>
/// A distributed semaphore on a PostgreSQL database: at most
/// <see cref="MaxCount"/> tickets of the semaphore called <see cref="Name"/>
/// are held at any time, by every process of every machine that reaches the
/// database. DistributedLock's PostgreSQL package offers a lock (one
/// holder); this is its counting counterpart, on top of libwhsem.
/// </summary>
/// <remarks>
/// Every instance with the same <see cref="Name"/> on the same database, in
/// any process and any language binding of libwhsem, shares one pool of
/// tickets. A ticket is a session-level advisory lock: a holder that dies
/// gives it back as soon as the server sees its connection close.
/// Constructing an instance touches nothing outside this process; the first
/// acquisition connects and opens (creates if needed) the semaphore.
/// </remarks>
public sealed class PostgresDistributedSemaphore : IDistributedSemaphore
{
    private static readonly Func<TicketSlot, PostgresDistributedSemaphoreHandle> s_own = static slot => new(slot);
    private readonly SemaphoreCore _core;

    internal SemaphoreCore Core => _core;

    /// <summary>
    /// Describes the semaphore <paramref name="name"/> of
    /// <paramref name="maxCount"/> tickets, kept in the database that
    /// <paramref name="connectionString"/> names: an Npgsql connection string
    /// (the one DistributedLock's PostgreSQL types take), a libpq one or a
    /// <c>postgresql://</c> URI.
    /// </summary>
    /// <param name="name">The semaphore's name, finalized as every libwhsem binding does (<c>"abc"</c> is <c>Global\abc</c>), unless <paramref name="exactName"/>.</param>
    /// <param name="maxCount">How many tickets may be held at once; every process must use the same.</param>
    /// <param name="connectionString">Where the semaphore lives; see the README for the Npgsql keywords it understands.</param>
    /// <param name="connectionCheckCadence">
    /// How often a connection that carries tickets is pinged, so that a
    /// network that fails silently is noticed (and <see cref="PostgresDistributedSemaphoreHandle.HandleLostToken"/>
    /// cancelled) within about three of these. The default is libwhsem's,
    /// 1 s; <see cref="Timeout.InfiniteTimeSpan"/> pings never (a closed
    /// connection is still seen at once).
    /// </param>
    /// <param name="exactName">Use <paramref name="name"/> as given: it must already be a finalized name.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="connectionString"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxCount"/> is below 1, or <paramref name="connectionCheckCadence"/> is zero, negative (other than infinite) or too large.</exception>
    /// <exception cref="ArgumentException"><paramref name="connectionString"/> is empty or has a keyword that cannot be honoured (named in the message), or the finalized name contains '\0'.</exception>
    /// <exception cref="FormatException"><paramref name="exactName"/> is set and <paramref name="name"/> is not a valid name.</exception>
    public PostgresDistributedSemaphore(string name, int maxCount, string connectionString, TimeSpan? connectionCheckCadence = null, bool exactName = false)
        : this(name, maxCount, PostgresConnectionString.ToLibpq(connectionString), Timeouts.ToCadenceMilliseconds(connectionCheckCadence, nameof(connectionCheckCadence)), exactName)
    {
    }

    internal PostgresDistributedSemaphore(string name, int maxCount, string conninfo, int connectionCheckMs, bool exactName)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxCount);
        _core = new SemaphoreCore(
            SemaphoreNames.ValidateAndFinalize(name, exactName),
            maxCount,
            new SemaphoreOpenOptions(AbandonmentCheckMs: 0, conninfo, connectionCheckMs));
    }

    /// <summary>
    /// The name under which the semaphore is shared (<see cref="IDistributedSemaphore.Name"/>):
    /// <c>Global\abc</c> for "abc", as every libwhsem binding computes it.
    /// </summary>
    public string Name => _core.Name;

    /// <summary>The number of tickets (<see cref="IDistributedSemaphore.MaxCount"/>).</summary>
    public int MaxCount => _core.MaxCount;

    /// <summary>
    /// Tries to take a ticket, waiting at most <paramref name="timeout"/>
    /// (by default not at all): its handle, or null if none came in time.
    /// </summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled, also before the call.</exception>
    /// <exception cref="PostgresSemaphoreUnavailableException">The server cannot be reached, or the session the wait used ended.</exception>
    /// <exception cref="InvalidOperationException">A live process has the semaphore open with another max count.</exception>
    public PostgresDistributedSemaphoreHandle? TryAcquire(TimeSpan timeout = default, CancellationToken cancellationToken = default) =>
        _core.TryAcquire(timeout, cancellationToken, s_own);

    /// <summary>
    /// Takes a ticket, waiting at most <paramref name="timeout"/> (by
    /// default forever), or throws <see cref="TimeoutException"/>; the
    /// other exceptions are <see cref="TryAcquire"/>'s.
    /// </summary>
    public PostgresDistributedSemaphoreHandle Acquire(TimeSpan? timeout = null, CancellationToken cancellationToken = default) =>
        _core.Acquire(timeout, cancellationToken, s_own);

    /// <summary>
    /// <see cref="TryAcquire"/> without blocking the caller: no thread waits
    /// for the server, not even for the first connection.
    /// </summary>
    public ValueTask<PostgresDistributedSemaphoreHandle?> TryAcquireAsync(TimeSpan timeout = default, CancellationToken cancellationToken = default) =>
        _core.TryAcquireAsync(timeout, cancellationToken, s_own);

    /// <summary>
    /// <see cref="Acquire"/> without blocking the caller: no thread waits
    /// for the server, not even for the first connection.
    /// </summary>
    public ValueTask<PostgresDistributedSemaphoreHandle> AcquireAsync(TimeSpan? timeout = null, CancellationToken cancellationToken = default) =>
        _core.AcquireAsync(timeout, cancellationToken, s_own);

    IDistributedSynchronizationHandle? IDistributedSemaphore.TryAcquire(TimeSpan timeout, CancellationToken cancellationToken) =>
        TryAcquire(timeout, cancellationToken);

    IDistributedSynchronizationHandle IDistributedSemaphore.Acquire(TimeSpan? timeout, CancellationToken cancellationToken) =>
        Acquire(timeout, cancellationToken);

    ValueTask<IDistributedSynchronizationHandle?> IDistributedSemaphore.TryAcquireAsync(TimeSpan timeout, CancellationToken cancellationToken) =>
        SemaphoreCore.Upcast(TryAcquireAsync(timeout, cancellationToken));

    ValueTask<IDistributedSynchronizationHandle> IDistributedSemaphore.AcquireAsync(TimeSpan? timeout, CancellationToken cancellationToken) =>
        SemaphoreCore.Upcast<PostgresDistributedSemaphoreHandle>(AcquireAsync(timeout, cancellationToken)!)!;
}
