// SPDX-License-Identifier: MIT
using System.Diagnostics;
using System.Text;
using LibWhsem.Interop;
using Medallion.Threading;
using Medallion.Threading.WaitHandles;
using Xunit;

namespace LibWhsem.Tests;

/// <summary>
/// A name no other test (or test run) uses, removed from the machine when
/// disposed, together with any other names registered with it.
/// </summary>
internal sealed class UniqueName : IDisposable
{
    private static int s_counter;
    private readonly List<string> _finalNames = new();

    public UniqueName(string label)
    {
        Name = $"whsem-cs-{Environment.ProcessId}-{Interlocked.Increment(ref s_counter)}-{label}";
        Track(Name);
    }

    /// <summary>The name as a caller passes it (finalized by the semaphore).</summary>
    public string Name { get; }

    /// <summary>The finalized name, for exactName: true.</summary>
    public string Exact => SemaphoreNames.GetSafeName(Name);

    /// <summary>Also removes <paramref name="name"/> (given as a caller passes it) at the end.</summary>
    public string Track(string name)
    {
        lock (_finalNames) { _finalNames.Add(SemaphoreNames.GetSafeName(name)); }
        return name;
    }

    public void Dispose()
    {
        lock (_finalNames)
        {
            foreach (var finalName in _finalNames) { Unlink(finalName); }
        }
    }

    public static unsafe void Unlink(string finalName)
    {
        WhsemLibrary.EnsureLoaded();
        var utf8 = Encoding.UTF8.GetBytes(finalName + "\0");
        fixed (byte* p = utf8)
        {
            // NOT_FOUND is fine: a test may never have opened it.
            Native.whsem_unlink(p, Native.WHSEM_OPEN_EXACT_NAME | Native.WHSEM_UNLINK_FORCE);
        }
    }
}

internal static class Poll
{
    /// <summary>Waits up to <paramref name="seconds"/> for <paramref name="condition"/>; never asserts on speed.</summary>
    public static bool Until(Func<bool> condition, double seconds = 20)
    {
        var sw = Stopwatch.StartNew();
        while (!condition())
        {
            if (sw.Elapsed.TotalSeconds > seconds) { return false; }
            Thread.Sleep(10);
        }
        return true;
    }

    /// <summary>Like <see cref="Until"/>, with a full collection and the finalizers run before each look.</summary>
    public static bool CollectingUntil(Func<bool> condition) => Until(() =>
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        return condition();
    });
}

/// <summary>The worker program as a child process (see Worker/Program.cs).</summary>
internal sealed class Child : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _stderr = new();

    private Child(Process process)
    {
        _process = process;
        _process.ErrorDataReceived += (_, e) => { lock (_stderr) { _stderr.AppendLine(e.Data); } };
        _process.BeginErrorReadLine();
    }

    public static string WorkerPath => Path.Combine(AppContext.BaseDirectory, "whsem-worker-csharp.dll");

    public static Child Start(IDictionary<string, string?>? environment, params string[] args)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(WorkerPath);
        foreach (var a in args) { info.ArgumentList.Add(a); }
        if (environment != null)
        {
            foreach (var (k, v) in environment)
            {
                if (v == null) { info.Environment.Remove(k); } else { info.Environment[k] = v; }
            }
        }
        return new Child(Process.Start(info) ?? throw new InvalidOperationException("could not start the worker"));
    }

    public static Child Start(params string[] args) => Start(null, args);

    public Process Process => _process;

    public string Stderr { get { lock (_stderr) { return _stderr.ToString(); } } }

    /// <summary>The next line of output, or null if none came within the time.</summary>
    public string? ReadLine(double seconds = 30)
    {
        var task = _process.StandardOutput.ReadLineAsync();
        return task.Wait(TimeSpan.FromSeconds(seconds)) ? task.Result : null;
    }

    public void WriteLine(string line)
    {
        _process.StandardInput.WriteLine(line);
        _process.StandardInput.Flush();
    }

    public bool WaitForExit(double seconds = 30)
    {
        if (!_process.WaitForExit(TimeSpan.FromSeconds(seconds))) { return false; }
        // Only the untimed wait also waits for the end of the redirected stderr.
        _process.WaitForExit();
        return true;
    }

    /// <summary>
    /// A child holding the only ticket (worker hold HOLD-ARGS) keeps the
    /// parent's <paramref name="semaphore"/> waiting, synchronously or
    /// asynchronously, until it releases the ticket.
    /// </summary>
    public static async Task AssertItsTicketBlocksUntilReleased(IDistributedSemaphore semaphore, bool async, params string[] holdArgs)
    {
        var wait = TimeSpan.FromSeconds(30);
        using var child = Start(["hold", .. holdArgs]);
        var waiting = child.WaitBehind(semaphore, async, wait);
        Assert.False(waiting.Wait(TimeSpan.FromMilliseconds(200)));

        child.WriteLine("release");
        Assert.Equal("released", child.ReadLine());
        Assert.Same(waiting, await Task.WhenAny(waiting, Task.Delay(wait)));
        using var handle = await waiting;
        Assert.NotNull(handle);
        Assert.True(child.WaitForExit(), child.Stderr);
        Assert.Equal(0, child.Process.ExitCode);
    }

    /// <summary>
    /// Once this child (worker hold) says it holds the only ticket, checks
    /// that <paramref name="semaphore"/> has none free and starts waiting
    /// for it, synchronously (on a pool thread) or asynchronously.
    /// </summary>
    private Task<IDistributedSynchronizationHandle?> WaitBehind(IDistributedSemaphore semaphore, bool async, TimeSpan wait)
    {
        Assert.True(ReadLine() == "acquired", Stderr);
        Assert.Null(semaphore.TryAcquire());
        return async
            ? semaphore.TryAcquireAsync(wait).AsTask()
            : Task.Run(() => semaphore.TryAcquire(wait));
    }

    /// <summary>
    /// A child holding the only ticket (worker hold HOLD-ARGS) and then
    /// killed with SIGKILL loses it: the parent's <paramref name="semaphore"/>,
    /// waiting synchronously or asynchronously, gets it.
    /// </summary>
    public static async Task AssertAKilledHolderLosesIt(IDistributedSemaphore semaphore, bool async, params string[] holdArgs)
    {
        var wait = TimeSpan.FromSeconds(30);
        using var child = Start(["hold", .. holdArgs]);
        var waiting = child.WaitBehind(semaphore, async, wait);
        child.Process.Kill(); // SIGKILL: the child releases nothing itself
        Assert.True(child.WaitForExit(), "the killed child did not exit");
        Assert.Same(waiting, await Task.WhenAny(waiting, Task.Delay(wait)));
        using var handle = await waiting;
        Assert.NotNull(handle);
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(TimeSpan.FromSeconds(10));
        }
        _process.Dispose();
    }
}

/// <summary>Tests that count threads or time nothing else may disturb run alone.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class SerialCollection
{
    public const string Name = "serial";
}
