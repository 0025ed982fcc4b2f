using System.Diagnostics;
using Medallion.Threading.WaitHandles;
using Xunit;

namespace LibWhsem.Tests;

public class CrossProcessTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(20);

    [Fact]
    public void ATicketHeldByAChildBlocksTheParentUntilReleased()
    {
        using var n = new UniqueName("child");
        using var child = Child.Start("hold", "--name", n.Exact, "--max", "1", "--exact");
        Assert.True(child.ReadLine() == "acquired", child.Stderr);

        var semaphore = new WaitHandleDistributedSemaphore(n.Exact, 1, exactName: true);
        Assert.Null(semaphore.TryAcquire());
        var waiting = Task.Run(() => semaphore.TryAcquire(TimeSpan.FromSeconds(30)));
        Assert.False(waiting.Wait(TimeSpan.FromMilliseconds(200)));

        child.WriteLine("release");
        Assert.Equal("released", child.ReadLine());
        Assert.True(waiting.Wait(Long));
        using var handle = waiting.Result;
        Assert.NotNull(handle);
        Assert.True(child.WaitForExit(), child.Stderr);
        Assert.Equal(0, child.Process.ExitCode);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task AChildKilledWhileHoldingLosesItsTicket(bool async)
    {
        using var n = new UniqueName($"kill-{async}");
        using var child = Child.Start("hold", "--name", n.Name, "--max", "1");
        Assert.True(child.ReadLine() == "acquired", child.Stderr);

        var semaphore = new WaitHandleDistributedSemaphore(n.Name, 1, TimeSpan.FromMilliseconds(100));
        var acquire = async
            ? semaphore.TryAcquireAsync(TimeSpan.FromSeconds(30)).AsTask()
            : Task.Run(() => semaphore.TryAcquire(TimeSpan.FromSeconds(30)));
        Assert.False(acquire.Wait(TimeSpan.FromMilliseconds(200)));

        child.Process.Kill(); // SIGKILL: no chance to release
        Assert.True(child.WaitForExit());

        Assert.Same(acquire, await Task.WhenAny(acquire, Task.Delay(Long)));
        using var handle = await acquire;
        Assert.NotNull(handle);
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
    public void TheWorkerRunsTheCrossLanguageContract()
    {
        using var n = new UniqueName("worker");
        var log = Path.Combine(Path.GetTempPath(), $"{n.Name}.log");
        try
        {
            var args = new[] { "run", "--name", n.Name, "--max", "1", "--duration-ms", "300", "--log", log, "--hold-us", "100" };
            using var a = Child.Start(args);
            using var b = Child.Start(args.Append("--async").ToArray());
            Assert.True(a.WaitForExit(60), a.Stderr);
            Assert.True(b.WaitForExit(60), b.Stderr);
            Assert.Equal(0, a.Process.ExitCode);
            Assert.Equal(0, b.Process.ExitCode);

            var lines = File.ReadAllLines(log).Select(l => l.Split(' ')).ToList();
            Assert.NotEmpty(lines);
            Assert.All(lines, l =>
            {
                Assert.Equal(4, l.Length);
                Assert.Contains(l[0], new[] { "acq", "rel" });
                Assert.Equal("csharp", l[2]);
            });
            Assert.Equal(2, lines.Select(l => l[1]).Distinct().Count());
            // Max 1: in time order, every acq is followed by the rel of the same process.
            var ordered = lines.OrderBy(l => long.Parse(l[3])).ToList();
            for (var i = 0; i + 1 < ordered.Count; i += 2)
            {
                Assert.Equal("acq", ordered[i][0]);
                Assert.Equal("rel", ordered[i + 1][0]);
                Assert.Equal(ordered[i][1], ordered[i + 1][1]);
            }
        }
        finally
        {
            File.Delete(log);
        }
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
