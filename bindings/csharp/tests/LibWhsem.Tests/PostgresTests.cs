// SPDX-License-Identifier: MIT
using System.Data.Common;
using Medallion.Threading;
using Medallion.Threading.Postgres;
using Xunit;

namespace LibWhsem.Tests;

// PostgresDistributedSemaphore against the pg fixture's cluster: the
// IDistributedSemaphore surface with DistributedLock's conventions, as
// WaitHandleDistributedSemaphore is tested on shared memory. The backend's
// own guarantees (never over the max, dead holders, restarts) are proven
// by the C suites (pg.*, pg.library.*).
[Trait("Category", PgServer.Category)]
public class PostgresTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(30);

    private static PostgresDistributedSemaphore Semaphore(UniqueName n, int maxCount) => new(n.Name, maxCount, PgServer.Conninfo);

    [Fact]
    public async Task BasicSemanticsThroughTheInterface()
    {
        using var n = new UniqueName("pg-basic");
        IDistributedSemaphore semaphore = Semaphore(n, 1);
        await using (var handle = await semaphore.AcquireAsync(Long))
        {
            Assert.IsType<PostgresDistributedSemaphoreHandle>(handle);
            Assert.Null(semaphore.TryAcquire()); // not reentrant
            Assert.Null(await semaphore.TryAcquireAsync());
        }
        using (var handle = semaphore.TryAcquire())
        {
            Assert.IsType<PostgresDistributedSemaphoreHandle>(handle);
        }
        await using var last = await semaphore.TryAcquireAsync(Long);
        Assert.IsType<PostgresDistributedSemaphoreHandle>(last);
        Assert.Null(semaphore.TryAcquire());
    }

    [Fact]
    public void TheStateOnTheServerShowsTheTickets()
    {
        using var n = new UniqueName("pg-state");
        var semaphore = Semaphore(n, 2);
        using var held = semaphore.Acquire(Long);
        var state = semaphore.QueryState();
        Assert.Equal(2, state.MaxCount);
        Assert.Equal(1, state.FreeCount);
        Assert.Equal(1, state.Holders);
        Assert.Equal(0, state.Recoveries);
    }

    [Fact]
    public async Task AnAsyncFirstUseConnectsWithoutBlockingItsCaller()
    {
        using var n = new UniqueName("pg-async-first");
        var semaphore = Semaphore(n, 2);
        var first = semaphore.AcquireAsync(Long);
        var second = semaphore.TryAcquireAsync(Long);
        await using var a = await first;
        await using var b = await second;
        Assert.NotNull(b);
        Assert.Null(await semaphore.TryAcquireAsync());
    }

    [Fact]
    public async Task TimeoutsGiveNullOrTimeoutException()
    {
        using var n = new UniqueName("pg-timeout");
        await SemaphoreContract.TimeoutsGiveNullOrTimeoutException(Semaphore(n, 1), Semaphore(n, 1));
        Assert.Throws<ArgumentOutOfRangeException>("timeout", () => { _ = Semaphore(n, 1).AcquireAsync(TimeSpan.FromSeconds(-2)); });
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task AWaitWithoutTimeoutGetsTheReleasedTicket(bool async)
    {
        using var n = new UniqueName($"pg-infinite-{async}");
        var semaphore = Semaphore(n, 1);
        var held = Semaphore(n, 1).Acquire(Long);
        var waiting = async
            ? semaphore.AcquireAsync().AsTask()
            : Task.Run(() => semaphore.Acquire(Timeout.InfiniteTimeSpan));
        Assert.False(waiting.Wait(TimeSpan.FromMilliseconds(300)));
        held.Dispose();
        Assert.Same(waiting, await Task.WhenAny(waiting, Task.Delay(Long)));
        (await waiting).Dispose();
    }

    [Fact]
    public async Task AlreadyCanceledThrowsForSyncAndCancelsTheTaskForAsync()
    {
        using var n = new UniqueName("pg-precanceled");
        await SemaphoreContract.AlreadyCanceledThrowsForSyncAndCancelsTheTaskForAsync(Semaphore(n, 1));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task CancelingAWaitingAcquisitionEndsIt(bool async)
    {
        using var n = new UniqueName($"pg-cancel-{async}");
        var semaphore = Semaphore(n, 1);
        using var source = new CancellationTokenSource();
        using (Semaphore(n, 1).Acquire(Long))
        {
            var blocked = async
                ? semaphore.AcquireAsync(cancellationToken: source.Token).AsTask()
                : Task.Run(() => semaphore.Acquire(cancellationToken: source.Token));
            Assert.False(blocked.Wait(TimeSpan.FromMilliseconds(300)));
            source.Cancel();
            await Task.WhenAny(blocked, Task.Delay(Long));
            var e = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => blocked);
            Assert.Equal(source.Token, e.CancellationToken);
        }
        using var handle = semaphore.TryAcquire(Long);
        Assert.NotNull(handle);
    }

    [Fact]
    public void AMaxCountMismatchIsAClearError()
    {
        using var n = new UniqueName("pg-mismatch");
        using var held = Semaphore(n, 2).Acquire(Long);
        var other = Semaphore(n, 3);
        var e = Assert.Throws<InvalidOperationException>(() => other.TryAcquire());
        Assert.Contains("max count 2", e.Message, StringComparison.Ordinal);
        Assert.Equal("WHSEM_E_MAX_COUNT_MISMATCH", e.Data["whsem.status"]);
        Assert.True(other.AcquireAsync(Long).AsTask().ContinueWith(t => t.IsFaulted).Wait(Long));
    }

    [Fact]
    public async Task ANameMeansTheSameSemaphoreInEveryForm()
    {
        // libpq's string, Npgsql's and the provider reach one semaphore,
        // recorded under the finalized name every binding computes.
        using var n = new UniqueName("pg-forms");
        using var held = new PostgresDistributedSemaphore(n.Name, 2, PgServer.Npgsql).Acquire(Long);
        IDistributedSemaphoreProvider provider = new PostgresDistributedSemaphoreProvider(PgServer.Conninfo);
        await using (await provider.AcquireSemaphoreAsync(n.Name, 2, Long))
        {
            Assert.Null(await provider.TryAcquireSemaphoreAsync(n.Name, 2));
            Assert.Null(Semaphore(n, 2).TryAcquire());
        }
        Assert.Equal("2", PgServer.Psql($"SELECT max_count FROM whsem.semaphore WHERE name = '{n.Exact}'"));
    }

    [Fact]
    public async Task HandleLostTokenIsLiveUntilDisposedThenThrows()
    {
        using var n = new UniqueName("pg-token");
        var semaphore = Semaphore(n, 1);
        var handle = await semaphore.AcquireAsync(Long);
        var token = handle.HandleLostToken;
        Assert.True(token.CanBeCanceled);
        Assert.False(token.IsCancellationRequested);
        Assert.Equal(token, handle.HandleLostToken);
        await handle.DisposeAsync();
        await handle.DisposeAsync();
        Assert.Throws<ObjectDisposedException>(() => handle.HandleLostToken);
        // Released without loss: the watch ended without cancelling.
        using var next = semaphore.TryAcquire(Long);
        Assert.NotNull(next);
        Assert.False(token.IsCancellationRequested);
    }

    [Fact]
    public void AWatchedHandleThatIsDroppedStillGivesItsTicketBack()
    {
        // The watch roots only the token's source, never the handle: a
        // dropped handle is finalized and its ticket released.
        using var n = new UniqueName("pg-dropped");
        var semaphore = Semaphore(n, 1);
        WatchAndDrop(semaphore);
        Assert.True(Poll.CollectingUntil(() => { using var h = semaphore.TryAcquire(); return h != null; }));

        static void WatchAndDrop(PostgresDistributedSemaphore semaphore)
        {
            var handle = semaphore.Acquire(Long);
            Assert.True(handle.HandleLostToken.CanBeCanceled);
        }
    }

    [Fact]
    public void AnUnreachableServerIsADbExceptionWithoutThePassword()
    {
        var closedPort = ClosedPort();
        var semaphore = new PostgresDistributedSemaphore(
            "pg-unreachable", 1, $"Host=127.0.0.1;Port={closedPort};Username={PgServer.PasswordRole};Password={PgServer.Password};Timeout=5");
        var e = Assert.Throws<PostgresSemaphoreUnavailableException>(() => semaphore.TryAcquire());
        Assert.IsAssignableFrom<DbException>(e);
        Assert.Equal("WHSEM_E_UNAVAILABLE", e.Data["whsem.status"]);
        Assert.True(e.Message.Contains($"port {closedPort}", StringComparison.Ordinal), e.Message);
        Assert.DoesNotContain(PgServer.Password, e.Message, StringComparison.Ordinal);

        var task = semaphore.TryAcquireAsync(Long).AsTask();
        var async = Assert.Throws<AggregateException>(() => task.Wait(Long)).InnerException;
        Assert.IsType<PostgresSemaphoreUnavailableException>(async);
        Assert.DoesNotContain(PgServer.Password, async!.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void APasswordRoleConnectsOverTcpFromAnNpgsqlString()
    {
        // The table exists (any open by the superuser creates it); a role
        // that may not create schemas can use it.
        using var n = new UniqueName("pg-password");
        Semaphore(n, 1).Acquire(Long).Dispose();
        var npgsql = $"Host=127.0.0.1;Port={PgServer.Port};Database=postgres;Username={PgServer.PasswordRole};Password={PgServer.Password};" +
                     "SSL Mode=Prefer;Timeout=15;Application Name=my service;Pooling=true;Maximum Pool Size=20";
        using (var handle = new PostgresDistributedSemaphore(n.Name, 1, npgsql).TryAcquire(Long))
        {
            Assert.NotNull(handle);
            Assert.Null(Semaphore(n, 1).TryAcquire());
        }

        var wrong = new PostgresDistributedSemaphore(n.Name, 1, npgsql.Replace(PgServer.Password, "not-" + PgServer.Password, StringComparison.Ordinal));
        var e = Assert.Throws<UnauthorizedAccessException>(() => wrong.TryAcquire());
        Assert.DoesNotContain(PgServer.Password, e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ATicketHeldByAnotherProcessBlocksUntilReleased(bool async)
    {
        using var n = new UniqueName($"pg-child-{async}");
        await Child.AssertItsTicketBlocksUntilReleased(Semaphore(n, 1), async, "--name", n.Name, "--max", "1", "--backend", PgServer.Conninfo);
    }

    [Fact]
    public async Task AKilledHoldersTicketComesBack()
    {
        using var n = new UniqueName("pg-killed");
        using var child = Child.Start("hold", "--name", n.Name, "--max", "1", "--backend", PgServer.Conninfo);
        Assert.True(child.ReadLine() == "acquired", child.Stderr);
        var waiting = Semaphore(n, 1).AcquireAsync(Long).AsTask();
        Assert.False(waiting.Wait(TimeSpan.FromMilliseconds(300)));
        child.Process.Kill();
        Assert.Same(waiting, await Task.WhenAny(waiting, Task.Delay(Long)));
        (await waiting).Dispose();
    }

    private static int ClosedPort()
    {
        // Bound, never listened on: connecting is refused at once.
        using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        socket.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0));
        return ((System.Net.IPEndPoint)socket.LocalEndPoint!).Port;
    }
}

// Ending a holder's session (pg_terminate_backend) ends every ticket this
// process holds on that session, so these run alone.
[Trait("Category", PgServer.Category)]
[Collection(SerialCollection.Name)]
public class PostgresLostTicketTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(30);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task HandleLostTokenIsCancelledWhenTheHoldersSessionIsTerminated(bool readAfterLoss)
    {
        using var n = new UniqueName($"pg-lost-{readAfterLoss}");
        var semaphore = new PostgresDistributedSemaphore(n.Name, 1, PgServer.Conninfo);
        var handle = semaphore.Acquire(Long);
        CancellationToken token = default;
        // Whether the application's callback ran on a thread-pool thread
        // (never on libwhsem's own, which it could hold up).
        var told = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!readAfterLoss)
        {
            token = handle.HandleLostToken;
            token.Register(() => told.TrySetResult(Thread.CurrentThread.IsThreadPoolThread));
        }

        Assert.Equal(1, PgServer.TerminateHolders(n.Exact));
        if (readAfterLoss)
        {
            // Once the server has given the ticket away, a watch started on
            // it is told at once. (Right after the terminate, this process's
            // own tries may find its connection gone: they are retried.)
            Assert.True(Poll.Until(() => TryAcquireAndRelease(semaphore)));
            token = handle.HandleLostToken;
            token.Register(() => told.TrySetResult(Thread.CurrentThread.IsThreadPoolThread));
        }
        Assert.Same(told.Task, await Task.WhenAny(told.Task, Task.Delay(Long)));
        // (A token already cancelled runs a callback registered later on
        // the registering thread, as any CancellationToken does.)
        Assert.True(await told.Task || readAfterLoss);
        Assert.True(token.IsCancellationRequested);

        // Disposing a lost handle is quiet; the semaphore goes on working.
        handle.Dispose();
        handle.Dispose();
        Assert.Throws<ObjectDisposedException>(() => handle.HandleLostToken);
        using var again = semaphore.TryAcquire(Long);
        Assert.NotNull(again);
        Assert.False(again!.HandleLostToken.IsCancellationRequested);
    }

    private static bool TryAcquireAndRelease(PostgresDistributedSemaphore semaphore)
    {
        try
        {
            using var handle = semaphore.TryAcquire();
            return handle != null;
        }
        catch (PostgresSemaphoreUnavailableException)
        {
            return false;
        }
    }
}
