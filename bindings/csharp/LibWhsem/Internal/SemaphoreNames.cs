// SPDX-License-Identifier: MIT
using System.Security.Cryptography;
using System.Text;

namespace Medallion.Threading.WaitHandles;

/// <summary>
/// Name finalization, identical to the Windows original's: the finalized
/// name is what <see cref="WaitHandleDistributedSemaphore.Name"/> reports,
/// and every libwhsem binding computes the same one (whsem_safe_name).
/// </summary>
/// <remarks>
/// Computed here rather than by whsem_safe_name for one edge case: when the
/// cut at 165 UTF-16 units splits a surrogate pair, .NET keeps the lone high
/// surrogate (as the original does) while the C library writes U+FFFD. The
/// semaphore is then opened by the UTF-8 of this name, in which the lone
/// surrogate becomes U+FFFD too, so both name the same semaphore.
/// </remarks>
internal static class SemaphoreNames
{
    internal const string GlobalPrefix = @"Global\";

    /// <summary>The longest finalized name, in UTF-16 code units.</summary>
    internal const int MaxNameLength = 260;

    private const int MaxSuffixLength = MaxNameLength - 7; // GlobalPrefix.Length

    internal static string ValidateAndFinalize(string name, bool exactName)
    {
        string finalName;
        if (exactName)
        {
            ValidateExactName(name);
            finalName = name;
        }
        else
        {
            finalName = GetSafeName(name);
        }

        if (finalName.Contains('\0'))
        {
            throw new ArgumentException(
                "A semaphore name may not contain the character '\\0' (NUL) on Linux: libwhsem names are NUL-terminated UTF-8 strings.",
                nameof(name));
        }
        return finalName;
    }

    internal static string GetSafeName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);

        // Only the part after the prefix is made safe (and hashed), so that a
        // name given with its prefix keeps it.
        if (name.StartsWith(GlobalPrefix, StringComparison.Ordinal))
        {
            var suffix = name.Substring(GlobalPrefix.Length);
            var safeSuffix = ToSafeSuffix(suffix);
            return safeSuffix == suffix ? name : GlobalPrefix + safeSuffix;
        }
        return GlobalPrefix + ToSafeSuffix(name);
    }

    private static string ToSafeSuffix(string suffix)
    {
        var valid = suffix.Length == 0 ? "EMPTY" : suffix.Replace('\\', '_');
        if (valid == suffix && valid.Length <= MaxSuffixLength)
        {
            return suffix;
        }

        // Any change makes the name ambiguous, so a hash of the name as given
        // keeps distinct names distinct; a readable start of it stays in front.
        var hash = Convert.ToBase64String(SHA512.HashData(Encoding.UTF8.GetBytes(suffix)));
        if (hash.Length >= MaxSuffixLength)
        {
            return hash.Substring(0, MaxSuffixLength);
        }
        return valid.Substring(0, Math.Min(valid.Length, MaxSuffixLength - hash.Length)) + hash;
    }

    private static void ValidateExactName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (name.Length > MaxNameLength)
        {
            throw new FormatException($"{nameof(name)}: must be at most {MaxNameLength} characters");
        }
        if (!name.StartsWith(GlobalPrefix, StringComparison.Ordinal))
        {
            throw new FormatException($"{nameof(name)}: must start with '{GlobalPrefix}'");
        }
        if (name.Length == GlobalPrefix.Length)
        {
            throw new FormatException($"{nameof(name)}: must not be exactly '{GlobalPrefix}'");
        }
        if (name.IndexOf('\\', GlobalPrefix.Length) >= 0)
        {
            throw new FormatException($"{nameof(name)}: must not contain '\\' after '{GlobalPrefix}'");
        }
    }
}
