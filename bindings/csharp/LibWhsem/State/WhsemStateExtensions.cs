// SPDX-License-Identifier: MIT
using Medallion.Threading.Postgres;
using Medallion.Threading.WaitHandles;

namespace LibWhsem;

/// <summary>
/// <c>QueryState()</c> for each class of this package: a <see cref="WhsemState"/>
/// of the object's name. Reading it opens the name first if the instance has
/// not acquired anything yet (creating it, as an acquisition would), so it
/// fails like an acquisition would, e.g. on a max count mismatch.
/// </summary>
public static class WhsemStateExtensions
{
    /// <summary>Reads the state of <paramref name="semaphore"/>'s name on this machine.</summary>
    public static WhsemState QueryState(this WaitHandleDistributedSemaphore semaphore) =>
        (semaphore ?? throw new ArgumentNullException(nameof(semaphore))).Core.Query();

    /// <summary>Reads the state of <paramref name="lock"/>'s name on this machine (<see cref="WhsemState.MaxCount"/> is 1).</summary>
    public static WhsemState QueryState(this EventWaitHandleDistributedLock @lock) =>
        (@lock ?? throw new ArgumentNullException(nameof(@lock))).Core.Query();

    /// <summary>Reads the state of <paramref name="semaphore"/>'s name on its database: one round trip, on the calling thread.</summary>
    public static WhsemState QueryState(this PostgresDistributedSemaphore semaphore) =>
        (semaphore ?? throw new ArgumentNullException(nameof(semaphore))).Core.Query();
}
