// SPDX-License-Identifier: MIT
using Medallion.Threading.WaitHandles;
using Xunit;
using Xunit.Abstractions;

namespace LibWhsem.Tests;

[Collection(SerialCollection.Name)]
public class AsyncThreadTests(ITestOutputHelper output)
{
    private static int ThreadCount()
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith("Threads:", StringComparison.Ordinal)) { return int.Parse(line.AsSpan(8).Trim()); }
        }
        throw new InvalidOperationException("no Threads: line in /proc/self/status");
    }

    [Fact]
    public async Task AThousandPendingAcquisitionsBlockNoThreads()
    {
        using var n = new UniqueName("threads");
        var semaphore = new WaitHandleDistributedSemaphore(n.Name, 1);
        var holder = semaphore.Acquire(TimeSpan.FromSeconds(20));
        var before = ThreadCount();

        var pending = Enumerable.Range(0, 1000).Select(_ => semaphore.AcquireAsync(TimeSpan.FromMinutes(2)).AsTask()).ToList();
        Assert.DoesNotContain(pending, t => t.IsCompleted);
        var most = before;
        for (var i = 0; i < 20; i++)
        {
            most = Math.Max(most, ThreadCount());
            await Task.Delay(25);
        }
        Assert.DoesNotContain(pending, t => t.IsCompleted);
        output.WriteLine($"threads: {before} before, at most {most} with 1000 acquisitions pending");
        Assert.True(most - before <= 5, $"{before} threads before, up to {most} with 1000 acquisitions pending");

        // Each completion hands the ticket on to the next.
        var done = 0;
        var all = Task.WhenAll(pending.Select(async t =>
        {
            await using (await t) { Interlocked.Increment(ref done); }
        }));
        holder.Dispose();
        Assert.Same(all, await Task.WhenAny(all, Task.Delay(TimeSpan.FromMinutes(2))));
        Assert.Equal(1000, done);
        using var last = semaphore.TryAcquire();
        Assert.NotNull(last);
    }
}
