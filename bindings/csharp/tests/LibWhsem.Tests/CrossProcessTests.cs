using System.Diagnostics;
using Medallion.Threading.WaitHandles;
using Xunit;

namespace LibWhsem.Tests;

public class CrossProcessTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(20);

    // The smoke test: the binding works across processes, waiting in the
    // native call or through libwhsem's callback. That tickets of killed
    // processes come back and that processes never exceed the max count is
    // proven by the C suites (tests/library Crash.*, MultiProcess.*,
    // Async.AKilledHolderHandsItsTicketToAnAsyncWaiter) and by the
    // cross-language test (xlang_chaos), which runs this binding's worker.
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ATicketHeldByAChildBlocksTheParentUntilReleased(bool async)
    {
        using var n = new UniqueName($"child-{async}");
        using var child = Child.Start("hold", "--name", n.Exact, "--max", "1", "--exact");
        Assert.True(child.ReadLine() == "acquired", child.Stderr);

        var semaphore = new WaitHandleDistributedSemaphore(n.Exact, 1, exactName: true);
        Assert.Null(semaphore.TryAcquire());
        var waiting = async
            ? semaphore.TryAcquireAsync(TimeSpan.FromSeconds(30)).AsTask()
            : Task.Run(() => semaphore.TryAcquire(TimeSpan.FromSeconds(30)));
        Assert.False(waiting.Wait(TimeSpan.FromMilliseconds(200)));

        child.WriteLine("release");
        Assert.Equal("released", child.ReadLine());
        Assert.Same(waiting, await Task.WhenAny(waiting, Task.Delay(Long)));
        using var handle = await waiting;
        Assert.NotNull(handle);
        Assert.True(child.WaitForExit(), child.Stderr);
        Assert.Equal(0, child.Process.ExitCode);
    }

    [Fact]
    public void TheWorkerPrintsTheFinalizedName()
    {
        using var child = Child.Start("name", "");
        Assert.Equal(new WaitHandleDistributedSemaphore("", 1).Name, child.ReadLine());
        Assert.True(child.WaitForExit());
        Assert.Equal(0, child.Process.ExitCode);
    }

    [Fact]
    public void SemaphoresAreCreatedForEveryUserLikeTheOriginals()
    {
        using var n = new UniqueName("mode");
        new WaitHandleDistributedSemaphore(n.Name, 1).Acquire(Long).Dispose();
        var file = Directory.GetFiles("/dev/shm").Single(f => f.Contains(n.Name, StringComparison.Ordinal));
        Assert.Equal(
            UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.OtherRead | UnixFileMode.OtherWrite,
            File.GetUnixFileMode(file));
    }
}
