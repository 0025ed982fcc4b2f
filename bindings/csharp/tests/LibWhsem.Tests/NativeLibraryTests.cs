// SPDX-License-Identifier: MIT
using LibWhsem.Interop;
using Xunit;

namespace LibWhsem.Tests;

public class NativeLibraryTests
{
    private static readonly (string Item, uint Checksum, string Since)[] Table =
    {
        ("whsem_open", 0x11111111u, "1.0"),
        ("whsem_new_thing", 0x22222222u, "1.2"),
        ("struct whsem_info", 0x33333333u, "1.0"),
    };

    [Fact]
    public void TheLoadedLibraryImplementsTheGeneratedAbi()
    {
        WhsemLibrary.EnsureLoaded();
        Assert.StartsWith("1.", WhsemLibrary.LoadedVersion);
        Assert.Contains("libwhsem.so.1", WhsemLibrary.LoadedPath);
        Assert.NotEmpty(Native.AbiChecksums);
        Assert.Contains(Native.AbiChecksums, c => c.Item == "callback whsem_callback");
    }

    [Fact]
    public void AnOlderLibraryIsReportedWithWhatItLacks()
    {
        var e = Assert.Throws<EntryPointNotFoundException>(() => AbiContract.Verify(
            Table, item => item == "whsem_new_thing" ? 0u : Table.Single(t => t.Item == item).Checksum, "1.0.0", "/x/libwhsem.so.1", "1.2"));
        Assert.Contains("libwhsem 1.0.0 at /x/libwhsem.so.1 lacks whsem_new_thing (since 1.2)", e.Message);
        Assert.Contains("ABI 1.2", e.Message);
    }

    [Fact]
    public void ADifferentSignatureIsReportedAsAMismatch()
    {
        var e = Assert.Throws<InvalidOperationException>(() => AbiContract.Verify(
            Table, item => item == "struct whsem_info" ? 0x44444444u : Table.Single(t => t.Item == item).Checksum, "1.2.0", "/x/libwhsem.so.1", "1.2"));
        Assert.Contains("signature mismatch", e.Message);
        Assert.Contains("struct whsem_info (binding 0x33333333, library 0x44444444)", e.Message);
    }

    [Fact]
    public void ANewerLibraryWithMoreItemsLoads()
    {
        var library = Table.ToDictionary(t => t.Item, t => t.Checksum);
        library["whsem_from_the_future"] = 0x55555555u;
        AbiContract.Verify(Table, item => library.GetValueOrDefault(item), "1.3.0", "/x/libwhsem.so.1", "1.2");
    }

    [Fact]
    public void AMissingLibraryGivesAClearMessage()
    {
        using var child = Child.Start(new Dictionary<string, string?> { ["WHSEM_LIBRARY"] = "/nonexistent/libwhsem.so.1" }, "version");
        Assert.True(child.WaitForExit());
        Assert.Equal(1, child.Process.ExitCode);
        Assert.Contains("WHSEM_LIBRARY is set to '/nonexistent/libwhsem.so.1'", child.Stderr);

        // Without the variable the loader's path is searched: this fails
        // unless libwhsem is installed system-wide.
        var installed = File.Exists("/etc/ld.so.cache") && File.ReadAllText("/etc/ld.so.cache").Contains("libwhsem.so.1");
        using var plain = Child.Start(new Dictionary<string, string?> { ["WHSEM_LIBRARY"] = null, ["LD_LIBRARY_PATH"] = null }, "version");
        Assert.True(plain.WaitForExit());
        if (installed)
        {
            Assert.Equal(0, plain.Process.ExitCode);
        }
        else
        {
            Assert.Equal(1, plain.Process.ExitCode);
            Assert.Contains("libwhsem.so.1 (libwhsem, the native library behind Medallion.Threading.WaitHandles on Linux) was not found", plain.Stderr);
            Assert.Contains("WHSEM_LIBRARY", plain.Stderr);
        }
    }
}
