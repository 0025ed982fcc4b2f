// SPDX-License-Identifier: MIT
using System.Reflection;
using System.Runtime.InteropServices;

namespace LibWhsem.Interop;

/// <summary>
/// Finds and loads libwhsem once per process, registers it as the target of
/// every <c>[DllImport("whsem")]</c> in this assembly, and checks that it
/// implements the ABI the raw layer was generated from.
/// </summary>
/// <remarks>
/// Every path into native code goes through <see cref="EnsureLoaded"/>
/// first (opening a semaphore does), so the resolver is in place before the
/// first P/Invoke binds. A failed load is remembered: every later call
/// reports the same, clear error.
/// </remarks>
internal static unsafe class WhsemLibrary
{
    /// <summary>Names the libwhsem file to load, overriding the loader's search.</summary>
    internal const string PathVariable = "WHSEM_LIBRARY";

    /// <summary>
    /// The file the loader looks for: the SONAME on Linux, the DLL that the
    /// package's runtimes/win-x64/native/ folder holds on Windows.
    /// </summary>
    internal static readonly string FileName = OperatingSystem.IsWindows() ? "whsem.dll" : Native.SoName;

    private static readonly Lazy<Loaded> s_loaded = new(Load, LazyThreadSafetyMode.ExecutionAndPublication);

    private sealed record Loaded(IntPtr Handle, string Path, string Version);

    /// <summary>Loads and verifies the library, or throws why it cannot.</summary>
    internal static void EnsureLoaded() => _ = s_loaded.Value;

    /// <summary>Where the loaded library lives (for messages).</summary>
    internal static string LoadedPath => s_loaded.Value.Path;

    /// <summary>The loaded library's version string, e.g. "1.0.0".</summary>
    internal static string LoadedVersion => s_loaded.Value.Version;

    private static Loaded Load()
    {
        var assembly = typeof(WhsemLibrary).Assembly;
        var handle = Open(assembly, out var requested);

        var version = "(unknown version)";
        if (NativeLibrary.TryGetExport(handle, "whsem_version_string", out var versionFn))
        {
            version = Marshal.PtrToStringUTF8((IntPtr)((delegate* unmanaged[Cdecl]<byte*>)versionFn)()) ?? version;
        }
        var path = LocatePath(handle, "whsem_version") ?? requested;

        if (!NativeLibrary.TryGetExport(handle, "whsem_abi_checksum", out var checksumFn))
        {
            throw new EntryPointNotFoundException(
                $"libwhsem {version} at {path} lacks whsem_abi_checksum that this binding (ABI {Native.AbiVersion}) needs to check it: " +
                $"it is not a libwhsem 1.0 or newer.");
        }
        var checksum = (delegate* unmanaged[Cdecl]<byte*, uint>)checksumFn;
        AbiContract.Verify(Native.AbiChecksums, item => Checksum(checksum, item), version, path, Native.AbiVersion);

        NativeLibrary.SetDllImportResolver(assembly, (name, _, _) => name == Native.LibraryName ? handle : IntPtr.Zero);
        return new Loaded(handle, path, version);
    }

    private static IntPtr Open(Assembly assembly, out string requested)
    {
        var configured = Environment.GetEnvironmentVariable(PathVariable);
        if (!string.IsNullOrEmpty(configured))
        {
            requested = configured;
            try
            {
                return NativeLibrary.Load(configured);
            }
            catch (DllNotFoundException e)
            {
                throw new DllNotFoundException(
                    $"{PathVariable} is set to '{configured}', but libwhsem could not be loaded from there: {e.Message}", e);
            }
        }

        requested = FileName;
        // Searches the application's directory (where a package puts it) and
        // then the dynamic loader's path: LD_LIBRARY_PATH, ld.so.cache, /usr/lib.
        if (NativeLibrary.TryLoad(FileName, assembly, DllImportSearchPath.AssemblyDirectory | DllImportSearchPath.SafeDirectories, out var handle)
            || NativeLibrary.TryLoad(FileName, out handle))
        {
            return handle;
        }
        throw new DllNotFoundException(
            $"{FileName} (libwhsem, the native library behind Medallion.Threading.WaitHandles on Linux) was not found " +
            $"next to the application or on the dynamic loader's path (LD_LIBRARY_PATH, /etc/ld.so.cache). " +
            $"Install libwhsem (e.g. `cmake --install <build>`, then `ldconfig`), or set {PathVariable} to the full path of {FileName}.");
    }

    private static uint Checksum(delegate* unmanaged[Cdecl]<byte*, uint> fn, string item)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(item + "\0");
        fixed (byte* p = bytes)
        {
            return fn(p);
        }
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct DlInfo
    {
        public IntPtr FileName;
        public IntPtr BaseAddress;
        public IntPtr SymbolName;
        public IntPtr SymbolAddress;
    }

    [DllImport("libc.so.6", EntryPoint = "dladdr", ExactSpelling = true)]
    private static extern int DlAddr(IntPtr address, DlInfo* info);

    /// <summary>The file a loaded library came from, for error messages only.</summary>
    private static string? LocatePath(IntPtr handle, string export)
    {
        try
        {
            if (!NativeLibrary.TryGetExport(handle, export, out var address)) { return null; }
            DlInfo info;
            return DlAddr(address, &info) != 0 && info.FileName != IntPtr.Zero
                ? Path.GetFullPath(Marshal.PtrToStringUTF8(info.FileName)!)
                : null;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return null;
        }
    }
}
