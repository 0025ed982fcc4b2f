// SPDX-License-Identifier: MIT
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace Medallion.Threading.WaitHandles;

/// <summary>
/// The .NET timeout conventions (those of Task.Wait and of the original):
/// whole milliseconds, truncated; <see cref="Timeout.InfiniteTimeSpan"/>
/// (-1 ms) waits forever; anything else negative, or beyond int.MaxValue
/// ms, is out of range. libwhsem takes the same numbers (0 = try once,
/// -1 = forever).
/// </summary>
internal static class Timeouts
{
    internal const int Infinite = -1;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int ToMilliseconds(TimeSpan timeout, string paramName)
    {
        // Integer division truncates toward zero like (long)TotalMilliseconds,
        // without the floating point.
        var ms = timeout.Ticks / TimeSpan.TicksPerMillisecond;
        if ((ulong)(ms + 1) > (ulong)int.MaxValue + 1) { ThrowOutOfRange(timeout, paramName); }
        return (int)ms;
    }

    [DoesNotReturn]
    private static void ThrowOutOfRange(TimeSpan timeout, string paramName) =>
        throw new ArgumentOutOfRangeException(
            paramName,
            timeout,
            $"A wait is 0 to {int.MaxValue} whole milliseconds ({TimeSpan.FromMilliseconds(int.MaxValue)}), or Timeout.InfiniteTimeSpan for no limit.");

    internal static int ToMilliseconds(TimeSpan? timeout, string paramName) =>
        timeout is { } value ? ToMilliseconds(value, paramName) : Infinite;

    /// <summary>
    /// A period of whsem_open_options (abandonment_check_ms,
    /// connection_check_ms): 0 (null) lets libwhsem pick its default, -1
    /// (infinite) turns the periodic check off.
    /// </summary>
    internal static int ToCadenceMilliseconds(TimeSpan? cadence, string paramName)
    {
        if (cadence is not { } value) { return 0; }
        var ms = ToMilliseconds(value, paramName);
        if (ms == 0)
        {
            throw new ArgumentOutOfRangeException(paramName, value, "A check period of zero is not a period: pass null for libwhsem's default, or Timeout.InfiniteTimeSpan to turn the periodic check off.");
        }
        return ms;
    }

    /// <summary>
    /// What Acquire and AcquireAsync throw when their timeout passes. The
    /// wording is the original's, "semaphore" or "lock" included, since
    /// callers may log or match it.
    /// </summary>
    internal static TimeoutException Expired(string objectKind) =>
        new($"Timeout exceeded when trying to acquire the {objectKind}");
}
