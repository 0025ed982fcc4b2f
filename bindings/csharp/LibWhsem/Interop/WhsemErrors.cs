// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;

namespace LibWhsem.Interop;

/// <summary>
/// Turns a failing libwhsem status into the .NET exception a caller of the
/// original would expect for the same kind of failure.
/// </summary>
internal static unsafe class WhsemErrors
{
    /// <summary>The key under which exceptions carry the libwhsem status name.</summary>
    internal const string StatusKey = "whsem.status";

    /// <summary>
    /// The calling thread's detail message. Only meaningful right after the
    /// failing call, on the same thread (libwhsem keeps it thread-local).
    /// </summary>
    internal static string LastError() => Marshal.PtrToStringUTF8((IntPtr)Native.whsem_last_error()) ?? "";

    internal static string StatusName(int status) =>
        Marshal.PtrToStringUTF8((IntPtr)Native.whsem_status_name(status)) ?? status.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>An exception for <paramref name="status"/> with the thread's last error message.</summary>
    internal static Exception FromLastError(int status, string action) => Create(status, LastError(), action);

    internal static Exception Create(int status, string detail, string action)
    {
        var name = StatusName(status);
        var message = string.IsNullOrEmpty(detail)
            ? $"{action} failed: {name}"
            : $"{action} failed: {name}: {detail}";
        Exception e = status switch
        {
            Native.WHSEM_E_INVALID_ARGUMENT => new ArgumentException(message),
            Native.WHSEM_E_INVALID_NAME => new FormatException(message),
            Native.WHSEM_E_ACCESS_DENIED => new UnauthorizedAccessException(message),
            Native.WHSEM_E_NO_MEMORY => new OutOfMemoryException(message),
            Native.WHSEM_E_CORRUPT or Native.WHSEM_E_INCOMPATIBLE or Native.WHSEM_E_OS => new IOException(message),
            // The server cannot be reached (or libpq loaded), or the session
            // an acquisition waited on ended under it: a database failure,
            // which DistributedLock.Postgres users catch as DbException.
            Native.WHSEM_E_UNAVAILABLE or Native.WHSEM_E_TICKET_LOST => new Medallion.Threading.Postgres.PostgresSemaphoreUnavailableException(message),
            // MAX_COUNT_MISMATCH, LIMIT, INVALID_HANDLE, WRONG_PROCESS, BUSY,
            // NOT_FOUND and statuses newer than this binding: the call is
            // valid, the state of the system does not allow it.
            _ => new InvalidOperationException(message),
        };
        return Tag(e, status);
    }

    /// <summary>Records <paramref name="status"/>'s name on <paramref name="e"/>, under <see cref="StatusKey"/>.</summary>
    internal static TException Tag<TException>(TException e, int status)
        where TException : Exception
    {
        e.Data[StatusKey] = StatusName(status);
        return e;
    }

    /// <summary>Whether <paramref name="e"/> came from a libwhsem call that failed with <paramref name="status"/>.</summary>
    internal static bool HasStatus(Exception e, int status) => Equals(e.Data[StatusKey], StatusName(status));
}
