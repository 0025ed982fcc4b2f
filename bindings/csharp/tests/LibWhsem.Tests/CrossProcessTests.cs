// SPDX-License-Identifier: MIT
using Medallion.Threading.WaitHandles;
using Xunit;

namespace LibWhsem.Tests;

public class CrossProcessTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(20);

    // The smoke tests: the binding works across processes, waiting in the
    // native call or through libwhsem's callback, and a killed holder's
    // ticket reaches a waiter through either (the lock's twins are in
    // LockTests). That processes never exceed the max count, and recovery
    // in its corners, are the C suites' (tests/library Crash.*,
    // MultiProcess.*) and the cross-language test's (xlang_chaos, which runs
    // this binding's worker).
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ATicketHeldByAChildBlocksTheParentUntilReleased(bool async)
    {
        using var n = new UniqueName($"child-{async}");
        await Child.AssertItsTicketBlocksUntilReleased(
            new WaitHandleDistributedSemaphore(n.Exact, 1, exactName: true), async, "--name", n.Exact, "--max", "1", "--exact");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ATicketOfAKilledChildComesBack(bool async)
    {
        using var n = new UniqueName($"kill-{async}");
        await Child.AssertAKilledHolderLosesIt(
            new WaitHandleDistributedSemaphore(n.Name, 1, TimeSpan.FromMilliseconds(50)), async, "--name", n.Name, "--max", "1");
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
