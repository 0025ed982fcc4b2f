// SPDX-License-Identifier: MIT
// A worker with the command-line contract shared by every language's
// worker, so that one cross-language test can drive them all alike:
//
//   worker name NAME
//   worker run --name NAME --max N --duration-ms MS --log PATH [--async] [--hold-us US]
//              [--backend CONNINFO]
//
// With --backend the name lives on that PostgreSQL database
// (PostgresDistributedSemaphore). A ticket lost while held (its session
// ended) is told by HandleLostToken: the worker appends "lost <pid> csharp
// <ns>" instead of "rel", drops the ticket and goes on; an acquisition that
// fails because the server is away, or its session ended, is retried.
//
// and, for this binding's own tests:
//
//   worker hold --name NAME --max N [--exact] [--backend CONNINFO]
//   worker hold --name NAME --lock [--exact]   acquire (the semaphore, or with --lock
//                                              the EventWaitHandleDistributedLock),
//                                              print "acquired", then on the input
//                                              line "release" release it, print
//                                              "released" and exit
//   worker version                             load libwhsem, print its version
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using LibWhsem.Interop;
using Medallion.Threading;
using Medallion.Threading.Postgres;
using Medallion.Threading.WaitHandles;

namespace LibWhsem.Worker;

internal static class Program
{
    private static int Main(string[] args)
    {
        try
        {
            return args.Length == 0 ? Usage() : args[0] switch
            {
                "name" when args.Length == 2 => PrintName(args[1]),
                "run" => Run(new Options(args.AsSpan(1))).GetAwaiter().GetResult(),
                "hold" => Hold(new Options(args.AsSpan(1))),
                "version" => PrintVersion(),
                _ => Usage(),
            };
        }
        catch (UsageException e)
        {
            Console.Error.WriteLine($"worker: {e.Message}");
            return Usage();
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"worker: {e.GetType().Name}: {e.Message}");
            return 1;
        }
    }

    private static int Usage()
    {
        Console.Error.WriteLine("usage: worker name NAME");
        Console.Error.WriteLine("       worker run --name NAME --max N --duration-ms MS --log PATH [--async] [--hold-us US] [--backend CONNINFO]");
        Console.Error.WriteLine("       worker hold --name NAME --max N [--exact] [--backend CONNINFO]");
        Console.Error.WriteLine("       worker hold --name NAME --lock [--exact]");
        Console.Error.WriteLine("       worker version");
        return 2;
    }

    private static int PrintName(string name)
    {
        Console.Out.Write(new WaitHandleDistributedSemaphore(name, 1).Name + "\n");
        Console.Out.Flush();
        return 0;
    }

    private static int PrintVersion()
    {
        WhsemLibrary.EnsureLoaded();
        Console.Out.Write($"libwhsem {WhsemLibrary.LoadedVersion} {WhsemLibrary.LoadedPath}\n");
        return 0;
    }

    private static async Task<int> Run(Options o)
    {
        var semaphore = o.Semaphore();
        var holdNs = o.HoldUs * 1000L;
        var pid = Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
        using var log = new AppendLog(o.Log);
        var end = Monotonic.Now() + o.DurationMs * 1_000_000L;
        var wait = TimeSpan.FromMilliseconds(5000);
        while (Monotonic.Now() < end)
        {
            IDistributedSynchronizationHandle? handle;
            try
            {
                handle = o.Async
                    ? await semaphore.TryAcquireAsync(wait).ConfigureAwait(false)
                    : semaphore.TryAcquire(wait);
            }
            catch (PostgresSemaphoreUnavailableException)
            {
                // The server is away, or the session the wait used ended:
                // what the chaos test does on purpose. Try again.
                Thread.Sleep(10);
                continue;
            }
            if (handle == null) { continue; } // 5 s without a ticket: try again

            log.Append($"acq {pid} csharp {Monotonic.Now()}\n");
            // Only a ticket on a server can be lost; watching one starts here.
            var lost = o.Backend != null ? handle.HandleLostToken : CancellationToken.None;
            if (o.Backend != null)
            {
                // Holds of a chaos run on a server are long: sleep, woken by a loss.
                lost.WaitHandle.WaitOne(TimeSpan.FromTicks(holdNs / 100));
            }
            else
            {
                var until = Monotonic.Now() + holdNs;
                while (Monotonic.Now() < until) { Thread.SpinWait(20); }
            }
            if (lost.IsCancellationRequested)
            {
                log.Append($"lost {pid} csharp {Monotonic.Now()}\n");
                handle.Dispose(); // quiet: the library has let the ticket go
                continue;
            }
            log.Append($"rel {pid} csharp {Monotonic.Now()}\n");
            handle.Dispose();
        }
        return 0;
    }

    private static int Hold(Options o)
    {
        var wait = TimeSpan.FromSeconds(20);
        var handle = o.Lock ? new EventWaitHandleDistributedLock(o.Name, exactName: o.Exact).TryAcquire(wait) : o.Semaphore().TryAcquire(wait);
        if (handle == null)
        {
            Console.Error.WriteLine("worker: no ticket within 20 s");
            return 3;
        }
        Console.Out.Write("acquired\n");
        Console.Out.Flush();
        string? line;
        while ((line = Console.In.ReadLine()) != null)
        {
            if (line.Trim() == "release")
            {
                handle.Dispose();
                Console.Out.Write("released\n");
                Console.Out.Flush();
                return 0;
            }
        }
        // Input closed without "release": exit holding the ticket, which
        // libwhsem reclaims from the dead process.
        return 0;
    }

    private sealed class UsageException(string message) : Exception(message);

    private sealed class Options
    {
        public string Name = "";
        public int Max;
        public long DurationMs;
        public string Log = "";
        public bool Async;
        public bool Exact;
        public bool Lock;
        public long HoldUs = 200;
        public string? Backend;

        public Options(ReadOnlySpan<string> args)
        {
            var seen = new HashSet<string>();
            for (var i = 0; i < args.Length; i++)
            {
                var flag = args[i];
                seen.Add(flag);
                switch (flag)
                {
                    case "--async": Async = true; break;
                    case "--exact": Exact = true; break;
                    case "--lock": Lock = true; break;
                    case "--name": Name = Value(args, ref i); break;
                    case "--max": Max = checked((int)Number(args, ref i)); break;
                    case "--duration-ms": DurationMs = Number(args, ref i); break;
                    case "--log": Log = Value(args, ref i); break;
                    case "--hold-us": HoldUs = Number(args, ref i); break;
                    case "--backend": Backend = Value(args, ref i); break;
                    default: throw new UsageException($"unknown argument '{flag}'");
                }
            }
            if (!seen.Contains("--name")) { throw new UsageException("--name is required"); }
            if (Lock ? seen.Contains("--max") || Backend != null : !seen.Contains("--max"))
            {
                throw new UsageException("give --max N for a semaphore, or --lock (on this machine) for a lock");
            }
        }

        /// <summary>The semaphore on this machine, or on the --backend server.</summary>
        public IDistributedSemaphore Semaphore() => Lock
            ? throw new UsageException("--lock is for hold only")
            : Backend is null
            ? new WaitHandleDistributedSemaphore(Name, Max, exactName: Exact)
            : new PostgresDistributedSemaphore(Name, Max, Backend, exactName: Exact);

        private static string Value(ReadOnlySpan<string> args, ref int i) =>
            ++i < args.Length ? args[i] : throw new UsageException($"{args[i - 1]} needs a value");

        private static long Number(ReadOnlySpan<string> args, ref int i)
        {
            var text = Value(args, ref i);
            return long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n >= 0
                ? n
                : throw new UsageException($"{args[i - 1]}: '{text}' is not a non-negative number");
        }
    }
}

/// <summary>CLOCK_MONOTONIC in nanoseconds, the clock every worker stamps with.</summary>
internal static unsafe class Monotonic
{
    private const int ClockMonotonic = 1;

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec
    {
        public nint Seconds;
        public nint Nanoseconds;
    }

    [DllImport("libc.so.6", EntryPoint = "clock_gettime", ExactSpelling = true)]
    private static extern int ClockGetTime(int clock, Timespec* ts);

    public static long Now()
    {
        Timespec ts;
        if (ClockGetTime(ClockMonotonic, &ts) != 0) { throw new InvalidOperationException("clock_gettime(CLOCK_MONOTONIC) failed"); }
        return ts.Seconds * 1_000_000_000L + ts.Nanoseconds;
    }
}

/// <summary>
/// A file opened with O_APPEND, written one whole line per write(2), so that
/// lines of many processes never interleave.
/// </summary>
internal sealed unsafe class AppendLog : IDisposable
{
    private const int O_WRONLY = 0x1, O_CREAT = 0x40, O_APPEND = 0x400, O_CLOEXEC = 0x80000;
    private int _fd;

    [DllImport("libc.so.6", EntryPoint = "open", ExactSpelling = true, SetLastError = true)]
    private static extern int Open(byte* path, int flags, uint mode);

    [DllImport("libc.so.6", EntryPoint = "write", ExactSpelling = true, SetLastError = true)]
    private static extern nint Write(int fd, byte* buffer, nuint count);

    [DllImport("libc.so.6", EntryPoint = "close", ExactSpelling = true)]
    private static extern int Close(int fd);

    public AppendLog(string path)
    {
        var bytes = Encoding.UTF8.GetBytes(path + "\0");
        fixed (byte* p = bytes)
        {
            _fd = Open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0x1a4 /* 0644 */);
        }
        if (_fd < 0) { throw new IOException($"cannot open {path}: errno {Marshal.GetLastPInvokeError()}"); }
    }

    public void Append(string line)
    {
        var bytes = Encoding.ASCII.GetBytes(line);
        fixed (byte* p = bytes)
        {
            var written = Write(_fd, p, (nuint)bytes.Length);
            if (written != bytes.Length) { throw new IOException($"write to the log failed (wrote {written} of {bytes.Length}): errno {Marshal.GetLastPInvokeError()}"); }
        }
    }

    public void Dispose()
    {
        if (_fd >= 0) { Close(_fd); _fd = -1; }
    }
}
