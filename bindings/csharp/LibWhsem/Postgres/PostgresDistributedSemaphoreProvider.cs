// SPDX-License-Identifier: MIT
using Medallion.Threading.WaitHandles;

namespace Medallion.Threading.Postgres;

/// <summary>
/// Makes <see cref="PostgresDistributedSemaphore"/>s by name, all on one
/// database, as an <see cref="IDistributedSemaphoreProvider"/>: for code
/// written against the provider abstraction and DistributedLock.Core's
/// extension methods (<c>AcquireSemaphoreAsync</c>).
/// </summary>
/// <remarks>
/// Not called <c>PostgresDistributedSynchronizationProvider</c>: that is
/// DistributedLock.Postgres's provider (locks and reader-writer locks), in
/// the same namespace, and a program may use both packages.
/// </remarks>
public sealed class PostgresDistributedSemaphoreProvider : IDistributedSemaphoreProvider
{
    private readonly string _conninfo;
    private readonly int _connectionCheckMs;

    /// <summary>
    /// A provider for the database <paramref name="connectionString"/> names,
    /// checked here; <paramref name="connectionCheckCadence"/> as for
    /// <see cref="PostgresDistributedSemaphore(string, int, string, TimeSpan?, bool)"/>.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="connectionString"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="connectionString"/> is empty or has a keyword that cannot be honoured.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="connectionCheckCadence"/> is zero, negative (other than infinite) or too large.</exception>
    public PostgresDistributedSemaphoreProvider(string connectionString, TimeSpan? connectionCheckCadence = null)
    {
        _conninfo = PostgresConnectionString.ToLibpq(connectionString);
        _connectionCheckMs = Timeouts.ToCadenceMilliseconds(connectionCheckCadence, nameof(connectionCheckCadence));
    }

    /// <summary>
    /// A <see cref="PostgresDistributedSemaphore"/> called <paramref name="name"/>
    /// with <paramref name="maxCount"/> tickets; unless <paramref name="exactName"/>,
    /// the name is finalized as every libwhsem binding does.
    /// </summary>
    public PostgresDistributedSemaphore CreateSemaphore(string name, int maxCount, bool exactName = false) =>
        new(name, maxCount, _conninfo, _connectionCheckMs, exactName);

    IDistributedSemaphore IDistributedSemaphoreProvider.CreateSemaphore(string name, int maxCount) =>
        CreateSemaphore(name, maxCount);
}
