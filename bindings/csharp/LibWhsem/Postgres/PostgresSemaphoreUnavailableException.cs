// SPDX-License-Identifier: MIT
using System.Data.Common;

namespace Medallion.Threading.Postgres;

/// <summary>
/// Thrown by <see cref="PostgresDistributedSemaphore"/> when the PostgreSQL
/// server cannot be reached (down, refusing connections, a network
/// failure, libpq not installed), or when the session an acquisition was
/// waiting on ended under it (a server restart, <c>pg_terminate_backend</c>).
/// Nothing was acquired; trying again may succeed once the server is back.
/// </summary>
/// <remarks>
/// A <see cref="DbException"/>, as Npgsql's own exceptions are, so that code
/// that already catches database failures around DistributedLock's
/// PostgreSQL types catches these too. The message is libwhsem's, which
/// names the server, database and user, and never the password.
/// <c>Data["whsem.status"]</c> holds the libwhsem status name
/// (<c>WHSEM_E_UNAVAILABLE</c> or <c>WHSEM_E_TICKET_LOST</c>).
/// </remarks>
public sealed class PostgresSemaphoreUnavailableException : DbException
{
    internal PostgresSemaphoreUnavailableException(string message) : base(message) { }
}
