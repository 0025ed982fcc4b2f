// SPDX-License-Identifier: MIT
using System.Globalization;
using System.Text;

namespace LibWhsem.Interop;

/// <summary>
/// Compares the ABI this binding was generated from with the one a loaded
/// library implements, so that an old or different libwhsem fails with a
/// message instead of corrupting memory on the first call.
/// </summary>
internal static class AbiContract
{
    /// <summary>
    /// Throws when <paramref name="libraryChecksum"/> reports an item as
    /// unknown (0: the library predates it) or with another signature. Items
    /// the library has beyond <paramref name="expected"/> are fine: a newer
    /// library that only added functions must load.
    /// </summary>
    internal static void Verify(
        IEnumerable<(string Item, uint Checksum, string Since)> expected,
        Func<string, uint> libraryChecksum,
        string libraryVersion,
        string libraryPath,
        string bindingAbiVersion)
    {
        var missing = new List<(string Item, string Since)>();
        var mismatched = new List<(string Item, uint Expected, uint Actual)>();
        foreach (var (item, checksum, since) in expected)
        {
            var actual = libraryChecksum(item);
            if (actual == 0)
            {
                missing.Add((item, since));
            }
            else if (actual != checksum)
            {
                mismatched.Add((item, checksum, actual));
            }
        }

        if (missing.Count > 0)
        {
            var newest = missing.Select(m => m.Since).OrderBy(ParseVersion).Last();
            var items = string.Join(", ", missing.Select(m => $"{m.Item} (since {m.Since})"));
            throw new EntryPointNotFoundException(
                $"libwhsem {libraryVersion} at {libraryPath} lacks {items} that this binding (ABI {bindingAbiVersion}) needs; " +
                $"install libwhsem {newest} or newer, or point the {WhsemLibrary.PathVariable} environment variable at it.");
        }

        if (mismatched.Count > 0)
        {
            var sb = new StringBuilder();
            sb.Append(CultureInfo.InvariantCulture, $"libwhsem {libraryVersion} at {libraryPath} has a signature mismatch with this binding (ABI {bindingAbiVersion}) for ");
            sb.AppendJoin(", ", mismatched.Select(m => string.Create(CultureInfo.InvariantCulture, $"{m.Item} (binding 0x{m.Expected:x8}, library 0x{m.Actual:x8})")));
            sb.Append("; the binding and the library were built from different ABI descriptions. Use a libwhsem and a LibWhsem package of the same release.");
            throw new InvalidOperationException(sb.ToString());
        }
    }

    private static Version ParseVersion(string text) =>
        Version.TryParse(text.Contains('.') ? text : text + ".0", out var v) ? v : new Version(0, 0);
}
