// SPDX-License-Identifier: MIT
using System.Security.Cryptography;
using System.Text;

namespace Medallion.Threading.WaitHandles;

/// <summary>
/// Turns the name a caller gives into the name a lock or semaphore is shared
/// under. The result must equal, character for character, what the Windows
/// original computes (its <c>Name</c>), and what libwhsem's
/// <c>whsem_safe_name</c> computes for every other binding.
/// </summary>
/// <remarks>
/// <para>
/// The rule: the name lives in the <c>Global\</c> namespace; a name that
/// already starts with <c>Global\</c> is taken to carry it. What follows
/// the prefix (the tail) is used as it is when it is 1 to 253 UTF-16 units
/// long and has no <c>\</c>. Any other tail is replaced by a readable start
/// (<c>\</c> turned into <c>_</c>, an empty tail spelt <c>EMPTY</c>) followed
/// by the base64 of the SHA-512 of the tail's UTF-8, cut so that the whole
/// name is 260 units long at most.
/// </para>
/// <para>
/// Done here and not through whsem_safe_name because of one case: when the
/// cut falls between the halves of a surrogate pair, .NET keeps the lone
/// high half, as the original does, where the C library writes U+FFFD. The
/// name then reaches libwhsem as UTF-8, in which that lone half becomes
/// U+FFFD too, so both still open the same object.
/// </para>
/// </remarks>
internal static class SemaphoreNames
{
    internal const string GlobalPrefix = @"Global\";

    /// <summary>The longest finalized name, in UTF-16 code units.</summary>
    internal const int MaxNameLength = 260;

    private const int MaxTailLength = MaxNameLength - 7; // GlobalPrefix.Length

    /// <summary>
    /// The name to share under: <paramref name="name"/> itself if
    /// <paramref name="exactName"/> (once checked), else its finalized form.
    /// </summary>
    internal static string ValidateAndFinalize(string name, bool exactName)
    {
        var shared = exactName ? CheckExact(name) : GetSafeName(name);
        // Windows accepts a NUL in an object name; libwhsem's C strings cannot.
        return shared.Contains('\0')
            ? throw new ArgumentException(
                "The name contains a NUL character ('\\0'), which libwhsem cannot use: its names are NUL-terminated UTF-8.",
                nameof(name))
            : shared;
    }

    internal static string GetSafeName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var tail = name.StartsWith(GlobalPrefix, StringComparison.Ordinal) ? name.Substring(GlobalPrefix.Length) : name;
        return UsableAsItIs(tail) ? GlobalPrefix + tail : GlobalPrefix + ReadableStart(tail) + Digest(tail);
    }

    private static bool UsableAsItIs(string tail) =>
        tail.Length is > 0 and <= MaxTailLength && !tail.Contains('\\');

    /// <summary>The part of a replaced tail that a person can still recognise.</summary>
    private static string ReadableStart(string tail)
    {
        var readable = tail.Length == 0 ? "EMPTY" : tail.Replace('\\', '_');
        // The 88 characters of the digest always fit beside 165 of these.
        var room = MaxTailLength - DigestLength;
        return readable.Length <= room ? readable : readable.Substring(0, room);
    }

    /// <summary>Base64 of 64 bytes: 88 characters, padding included.</summary>
    private const int DigestLength = 88;

    /// <summary>Keeps replaced tails apart: two tails never share a digest in practice.</summary>
    private static string Digest(string tail) => Convert.ToBase64String(SHA512.HashData(Encoding.UTF8.GetBytes(tail)));

    /// <summary>Returns <paramref name="name"/> if it is already a finalized name; otherwise says which rule it breaks.</summary>
    private static string CheckExact(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var broken =
            name.Length > MaxNameLength ? $"is {name.Length} characters long, more than {MaxNameLength}"
            : !name.StartsWith(GlobalPrefix, StringComparison.Ordinal) ? $"does not begin with '{GlobalPrefix}'"
            : name.Length == GlobalPrefix.Length ? $"has nothing after '{GlobalPrefix}'"
            : name.IndexOf('\\', GlobalPrefix.Length) >= 0 ? $"has a '\\' after '{GlobalPrefix}'"
            : null;
        return broken is null
            ? name
            : throw new FormatException($"{nameof(name)}: an exact name must be a finalized one, and this one {broken}.");
    }
}
