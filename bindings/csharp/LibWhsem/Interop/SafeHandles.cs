// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;

namespace LibWhsem.Interop;

/// <summary>
/// A libwhsem handle (a 64-bit value, 0 never valid) owned by a
/// <see cref="SafeHandle"/>: released exactly once, by Dispose or, for one
/// that was dropped, by the finalizer.
/// </summary>
/// <remarks>
/// The value lives in its own field because libwhsem handles are 64-bit on
/// every platform while <see cref="IntPtr"/> is not; the base handle only
/// records "set" (1) or "not set" (0).
/// </remarks>
internal abstract class WhsemSafeHandle : SafeHandle
{
    private ulong _value;

    protected WhsemSafeHandle() : base(IntPtr.Zero, ownsHandle: true) { }

    protected WhsemSafeHandle(ulong value) : base(IntPtr.Zero, ownsHandle: true) => SetValue(value);

    public sealed override bool IsInvalid => handle == IntPtr.Zero;

    /// <summary>
    /// The raw value for a native call. The caller keeps the handle from
    /// being released during that call (AddRef, or GC.KeepAlive when only the
    /// finalizer can release it).
    /// </summary>
    internal ulong Value => _value;

    internal void SetValue(ulong value)
    {
        _value = value;
        SetHandle(value == 0 ? IntPtr.Zero : (IntPtr)1);
    }

    protected sealed override bool ReleaseHandle() => Release(_value) == Native.WHSEM_OK;

    protected abstract int Release(ulong value);
}

/// <summary>An open semaphore (whsem_sem), closed with whsem_close.</summary>
internal sealed unsafe class SemaphoreSafeHandle : WhsemSafeHandle
{
    /// <summary>0666: the permissions of a semaphore this binding creates.</summary>
    internal const uint WorldReadWrite = 0x1b6;

    private SemaphoreSafeHandle(ulong value) : base(value) { }

    /// <summary>Opens <paramref name="finalName"/> as given (it is already finalized).</summary>
    internal static SemaphoreSafeHandle Open(string finalName, int maxCount, Medallion.Threading.WaitHandles.SemaphoreOpenOptions how)
    {
        WhsemLibrary.EnsureLoaded();
        var utf8 = Utf8.NulTerminated(finalName);
        var backend = how.Backend is { } conninfo ? Utf8.NulTerminated(conninfo) : null;
        ulong sem;
        int status;
        Exception? error = null;
        fixed (byte* name = utf8)
        fixed (byte* server = backend)
        {
            var options = new whsem_open_options
            {
                struct_size = (uint)sizeof(whsem_open_options),
                flags = Native.WHSEM_OPEN_EXACT_NAME,
                abandonment_check_ms = how.AbandonmentCheckMs,
                // The original grants everyone full access to the semaphores it
                // creates, so that processes of different users can share them.
                // (A server's semaphores have no file.)
                mode = backend == null ? WorldReadWrite : 0,
                backend = (nint)server,
                connection_check_ms = how.ConnectionCheckMs,
            };
            status = Native.whsem_open(name, maxCount, &options, &sem);
            if (status != Native.WHSEM_OK)
            {
                error = WhsemErrors.FromLastError(status, $"Opening the semaphore '{finalName}'");
            }
        }
        if (error != null) { throw error; }
        return new SemaphoreSafeHandle(sem);
    }

    protected override int Release(ulong value) => Native.whsem_close(value);
}

/// <summary>A cancellation source (whsem_cancel), freed with whsem_cancel_free.</summary>
internal sealed unsafe class CancelSourceSafeHandle : WhsemSafeHandle
{
    private CancelSourceSafeHandle(ulong value) : base(value) { }

    internal static CancelSourceSafeHandle Create()
    {
        ulong cancel;
        var status = Native.whsem_cancel_new(&cancel);
        if (status != Native.WHSEM_OK) { throw WhsemErrors.FromLastError(status, "Creating a cancellation source"); }
        return new CancelSourceSafeHandle(cancel);
    }

    /// <summary>Ends every wait using this source; safe to race with Dispose.</summary>
    internal void Trigger()
    {
        var added = false;
        try
        {
            DangerousAddRef(ref added);
            Native.whsem_cancel_trigger(Value);
        }
        catch (ObjectDisposedException)
        {
            // Freed already: the wait it served is over.
        }
        finally
        {
            if (added) { DangerousRelease(); }
        }
    }

    protected override int Release(ulong value) => Native.whsem_cancel_free(value);
}

/// <summary>
/// An asynchronous acquisition (whsem_op), freed with whsem_op_free. The
/// value is set after whsem_acquire_async returns, which is why this one
/// starts empty.
/// </summary>
internal sealed class OpSafeHandle : WhsemSafeHandle
{
    internal OpSafeHandle() { }

    /// <summary>Asks the operation to end; safe to race with its completion and free.</summary>
    internal void Cancel()
    {
        var added = false;
        try
        {
            DangerousAddRef(ref added);
            Native.whsem_op_cancel(Value);
        }
        catch (ObjectDisposedException)
        {
            // Completed and freed: nothing to cancel.
        }
        finally
        {
            if (added) { DangerousRelease(); }
        }
    }

    protected override int Release(ulong value) => Native.whsem_op_free(value);
}

internal static class Utf8
{
    /// <summary>
    /// The UTF-8 of <paramref name="text"/> followed by a NUL. Unpaired
    /// surrogates become U+FFFD, as in every .NET UTF-8 conversion.
    /// </summary>
    internal static byte[] NulTerminated(string text)
    {
        var bytes = new byte[System.Text.Encoding.UTF8.GetByteCount(text) + 1];
        System.Text.Encoding.UTF8.GetBytes(text, bytes);
        return bytes;
    }
}
