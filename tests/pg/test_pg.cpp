// SPDX-License-Identifier: MIT
// The semantics SPEC.md promises, on the PostgreSQL backend: counting,
// timeouts, cancellation, close, max counts, names, asynchronous
// acquisition in its three styles, whsem_query, lost tickets, refused
// connections and rights, the CLI. Crashes and load: test_pg_crash.cpp.
#include "pg_util.h"

#include <dirent.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <poll.h>
#include <thread>
#include <vector>

using namespace pgtest;

namespace {

struct Sem {
    Sem(int32_t max, const char *what = "sem") : name(UniqueName(what)), s(Open(name, max)) {}
    ~Sem()
    {
        if (s) whsem_close(s);
    }
    std::string name;
    whsem_sem s;
};

whsem_status TryAcquire(whsem_sem s, whsem_ticket *t) { return whsem_acquire(s, 0, 0, t); }

}  // namespace

TEST(PgSemantics, CountsUpToMaxCountAndReleasesGiveBack)
{
    Sem sem(2);
    whsem_ticket a, b, c;
    WH_OK(TryAcquire(sem.s, &a));
    WH_OK(TryAcquire(sem.s, &b));
    EXPECT_EQ(TryAcquire(sem.s, &c), WHSEM_TIMEOUT);
    EXPECT_EQ(c, 0u);
    WH_OK(whsem_release(a));
    EXPECT_EQ(whsem_release(a), WHSEM_E_INVALID_HANDLE);
    WH_OK(TryAcquire(sem.s, &c));
    WH_OK(whsem_release(b));
    WH_OK(whsem_release(c));
    EXPECT_EQ(whsem_ticket_check(c), WHSEM_E_INVALID_HANDLE);
}

TEST(PgSemantics, TryRightAfterATimedOutWaitFindsTheFreedTicket)
{
    // A wait that timed out leaves connections queued in the server; they
    // are withdrawn, and a try never loses to them.
    Sem sem(1);
    whsem_ticket a, b;
    WH_OK(TryAcquire(sem.s, &a));
    EXPECT_EQ(whsem_acquire(sem.s, 50, 0, &b), WHSEM_TIMEOUT);
    for (int i = 0; i < 50; i++) {
        WH_OK(whsem_release(a));
        WH_OK(TryAcquire(sem.s, &a));
    }
    WH_OK(whsem_release(a));
}

TEST(PgSemantics, IntMaxTickets)
{
    Sem sem(INT32_MAX);
    std::vector<whsem_ticket> ts(20);
    for (auto &t : ts) WH_OK(TryAcquire(sem.s, &t));
    int32_t max = 0;
    WH_OK(whsem_max_count(sem.s, &max));
    EXPECT_EQ(max, INT32_MAX);
    for (auto t : ts) WH_OK(whsem_release(t));
}

TEST(PgSemantics, WaitsWithMoreIndicesThanWaitingConnections)
{
    // Max count 7: the waiting connections take turns over the indices;
    // whichever index is released, a waiter gets it.
    const int max = 7;
    std::string name = UniqueName("turns");
    whsem_open_options o{};
    std::string b = Socket();
    o = Options(b);
    o.abandonment_check_ms = 20; // the turn length
    whsem_sem sem;
    WH_OK(whsem_open(name.c_str(), max, &o, &sem));
    std::vector<whsem_ticket> held(max);
    for (auto &t : held) WH_OK(TryAcquire(sem, &t));
    for (int k : {6, 0, 5}) {
        std::atomic<whsem_status> got{WHSEM_PENDING};
        whsem_ticket t = 0;
        std::thread w([&] { got = whsem_acquire(sem, 30000, 0, &t); });
        std::this_thread::sleep_for(std::chrono::milliseconds(30));
        WH_OK(whsem_release(held[k]));
        w.join();
        ASSERT_EQ(got.load(), WHSEM_OK) << whsem_last_error();
        held[k] = t;
    }
    whsem_ticket extra;
    EXPECT_EQ(TryAcquire(sem, &extra), WHSEM_TIMEOUT);
    for (auto t : held) WH_OK(whsem_release(t));
    WH_OK(whsem_close(sem));
}

TEST(PgSemantics, NameIsTheFinalizedName)
{
    Sem sem(1, "name");
    char buf[600];
    size_t len;
    WH_OK(whsem_name(sem.s, buf, sizeof buf, &len));
    EXPECT_EQ(std::string(buf), "Global\\" + sem.name);
    Admin admin;
    EXPECT_EQ(admin.Number("SELECT count(*) FROM whsem.semaphore WHERE name = 'Global\\" +
                           sem.name + "'"),
              1);
}

TEST(PgSemantics, TimeoutReturnsNoTicketAfterWaiting)
{
    Sem sem(1);
    whsem_ticket a, b = 42;
    WH_OK(TryAcquire(sem.s, &a));
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(whsem_acquire(sem.s, 100, 0, &b), WHSEM_TIMEOUT);
    EXPECT_GE(SecondsSince(t0), 0.099);
    EXPECT_EQ(b, 0u);
    WH_OK(whsem_release(a));
}

TEST(PgSemantics, InfiniteWaitEndsWhenATicketIsReleased)
{
    Sem sem(1);
    whsem_ticket a, b = 0;
    WH_OK(TryAcquire(sem.s, &a));
    std::atomic<whsem_status> got{WHSEM_PENDING};
    std::thread w([&] { got = whsem_acquire(sem.s, WHSEM_INFINITE, 0, &b); });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_EQ(got.load(), WHSEM_PENDING);
    WH_OK(whsem_release(a));
    w.join();
    EXPECT_EQ(got.load(), WHSEM_OK);
    WH_OK(whsem_release(b));
}

TEST(PgSemantics, WaitersOfOneProcessAreServedInOrder)
{
    Sem sem(1);
    whsem_ticket a;
    WH_OK(TryAcquire(sem.s, &a));
    std::vector<int> order;
    std::mutex mu;
    std::vector<std::thread> ws;
    for (int i = 0; i < 3; i++) {
        ws.emplace_back([&, i] {
            whsem_ticket t;
            ASSERT_EQ(whsem_acquire(sem.s, WHSEM_INFINITE, 0, &t), WHSEM_OK);
            {
                std::lock_guard<std::mutex> g(mu);
                order.push_back(i);
            }
            whsem_release(t);
        });
        // Each is waiting before the next starts.
        ASSERT_TRUE(Eventually([&] {
            whsem_info info{};
            info.struct_size = sizeof info;
            size_t n;
            return whsem_query(sem.s, &info, nullptr, 0, &n) == WHSEM_OK &&
                   info.waiters == (uint32_t)i + 1;
        }));
    }
    WH_OK(whsem_release(a));
    for (auto &w : ws) w.join();
    EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));
}

TEST(PgSemantics, TriggeredSourceCancelsEvenWhenATicketIsFree)
{
    Sem sem(1);
    whsem_cancel c;
    WH_OK(whsem_cancel_new(&c));
    WH_OK(whsem_cancel_trigger(c));
    whsem_ticket t = 7;
    EXPECT_EQ(whsem_acquire(sem.s, WHSEM_INFINITE, c, &t), WHSEM_CANCELED);
    EXPECT_EQ(t, 0u);
    WH_OK(whsem_cancel_free(c));
}

TEST(PgSemantics, TriggerEndsWaitsPromptly)
{
    Sem sem(1);
    whsem_ticket a;
    WH_OK(TryAcquire(sem.s, &a));
    whsem_cancel c;
    WH_OK(whsem_cancel_new(&c));
    std::vector<std::thread> ws;
    std::atomic<int> canceled{0};
    for (int i = 0; i < 4; i++)
        ws.emplace_back([&] {
            whsem_ticket t;
            if (whsem_acquire(sem.s, WHSEM_INFINITE, c, &t) == WHSEM_CANCELED) canceled++;
        });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    WH_OK(whsem_cancel_trigger(c));
    for (auto &w : ws) w.join();
    EXPECT_EQ(canceled.load(), 4);
    // The ticket is where it was, and nothing leaked: it can go round.
    WH_OK(whsem_release(a));
    WH_OK(TryAcquire(sem.s, &a));
    WH_OK(whsem_release(a));
    WH_OK(whsem_cancel_free(c));
}

TEST(PgSemantics, CloseEndsWaitsOnThatHandleAndTicketsOutliveIt)
{
    std::string name = UniqueName("close");
    whsem_sem s1 = Open(name, 1), s2 = Open(name, 1);
    whsem_ticket a;
    WH_OK(TryAcquire(s1, &a));
    std::atomic<whsem_status> got{WHSEM_PENDING};
    std::thread w([&] {
        whsem_ticket t;
        got = whsem_acquire(s2, WHSEM_INFINITE, 0, &t);
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    WH_OK(whsem_close(s2));
    w.join();
    EXPECT_EQ(got.load(), WHSEM_CANCELED);
    WH_OK(whsem_close(s1));
    WH_OK(whsem_release(a)); // the ticket outlived every handle
    whsem_sem s3 = Open(name, 1);
    WH_OK(TryAcquire(s3, &a));
    WH_OK(whsem_release(a));
    WH_OK(whsem_close(s3));
}

TEST(PgSemantics, MaxCountMismatchWhileAnotherProcessHasItOpen)
{
    std::string name = UniqueName("mismatch");
    int *go = Shared<int>();
    pid_t child = Child([&] {
        whsem_sem s = Open(name, 2);
        __atomic_store_n(go, 1, __ATOMIC_SEQ_CST);
        while (__atomic_load_n(go, __ATOMIC_SEQ_CST) != 2) usleep(1000);
        whsem_close(s);
        return 0;
    });
    ASSERT_TRUE(Eventually([&] { return __atomic_load_n(go, __ATOMIC_SEQ_CST) == 1; }));
    std::string b = Socket();
    whsem_open_options o = Options(b);
    whsem_sem s;
    EXPECT_EQ(whsem_open(name.c_str(), 3, &o, &s), WHSEM_E_MAX_COUNT_MISMATCH);
    EXPECT_NE(std::string(whsem_last_error()).find("max count 2"), std::string::npos)
        << whsem_last_error();
    EXPECT_EQ(s, 0u);
    WH_OK(whsem_open(name.c_str(), 2, &o, &s));
    WH_OK(whsem_close(s));
    __atomic_store_n(go, 2, __ATOMIC_SEQ_CST);
    EXPECT_EQ(Wait(child), 0);
    // Nobody has it open now: another max count replaces it, once the
    // server has seen the child's session end (it was gone in a moment).
    ASSERT_TRUE(Eventually([&] { return whsem_open(name.c_str(), 3, &o, &s) == WHSEM_OK; }))
        << whsem_last_error();
    int32_t max;
    WH_OK(whsem_max_count(s, &max));
    EXPECT_EQ(max, 3);
    WH_OK(whsem_close(s));
}

TEST(PgSemantics, OpenExistingAdoptsTheMaxCountOrIsNotFound)
{
    std::string b = Socket();
    whsem_open_options o = Options(b);
    whsem_sem s;
    std::string missing = UniqueName("missing");
    EXPECT_EQ(whsem_open_existing(missing.c_str(), &o, &s), WHSEM_E_NOT_FOUND);
    Sem sem(5);
    WH_OK(whsem_open_existing(sem.name.c_str(), &o, &s));
    int32_t max;
    WH_OK(whsem_max_count(s, &max));
    EXPECT_EQ(max, 5);
    WH_OK(whsem_close(s));
}

TEST(PgSemantics, ChildOfForkGetsWrongProcessForItsParentsTicket)
{
    Sem sem(1);
    whsem_ticket a;
    WH_OK(TryAcquire(sem.s, &a));
    pid_t child = Child([&] { return whsem_release(a) == WHSEM_E_WRONG_PROCESS ? 0 : 1; });
    EXPECT_EQ(Wait(child), 0);
    whsem_ticket b;
    EXPECT_EQ(TryAcquire(sem.s, &b), WHSEM_TIMEOUT); // still the parent's
    WH_OK(whsem_release(a));
}

TEST(PgSemantics, QueryShowsHoldersOfEveryProcessAndWaiters)
{
    Sem sem(2, "query");
    whsem_ticket a;
    WH_OK(TryAcquire(sem.s, &a));
    int *stage = Shared<int>();
    pid_t child = Child([&] {
        whsem_sem s = Open(sem.name, 2);
        whsem_ticket t;
        if (whsem_acquire(s, 0, 0, &t) != WHSEM_OK) return 1;
        __atomic_store_n(stage, 1, __ATOMIC_SEQ_CST);
        while (__atomic_load_n(stage, __ATOMIC_SEQ_CST) != 2) usleep(1000);
        whsem_release(t);
        whsem_close(s);
        return 0;
    });
    ASSERT_TRUE(Eventually([&] { return __atomic_load_n(stage, __ATOMIC_SEQ_CST) == 1; }));
    std::thread waiter([&] {
        whsem_ticket t;
        if (whsem_acquire(sem.s, WHSEM_INFINITE, 0, &t) == WHSEM_OK) whsem_release(t);
    });
    whsem_info info{};
    info.struct_size = sizeof info;
    whsem_holder h[8];
    size_t n = 0;
    ASSERT_TRUE(Eventually([&] {
        return whsem_query(sem.s, &info, h, 8, &n) == WHSEM_OK && info.waiters == 1;
    })) << whsem_last_error();
    EXPECT_EQ(info.max_count, 2);
    EXPECT_EQ(info.free_count, 0);
    EXPECT_EQ(info.holders, 2u);
    EXPECT_EQ(info.processes, 2u);
    ASSERT_EQ(n, 2u);
    bool mine = false, theirs = false;
    for (size_t i = 0; i < n; i++) {
        EXPECT_EQ(h[i].tickets, 1);
        EXPECT_GT(h[i].since_unix_ms, 0);
        if (h[i].pid == getpid()) mine = h[i].waiting == 1;
        if (h[i].pid == child) theirs = true;
    }
    EXPECT_TRUE(mine && theirs);
    // The same processes with their hosts, and since when ours waits.
    char host[256] = "";
    gethostname(host, sizeof host);
    whsem_process ps[8]{};
    ps[0].struct_size = sizeof ps[0];
    WH_OK(whsem_query_processes(sem.s, &info, ps, 8, &n));
    ASSERT_EQ(n, 2u);
    for (size_t i = 0; i < n; i++) {
        EXPECT_EQ(std::string(ps[i].host), std::string(host).substr(0, 63));
        EXPECT_EQ(ps[i].tickets, 1);
        EXPECT_GT(ps[i].holding_since_unix_ms, 0);
        EXPECT_EQ(ps[i].is_self, ps[i].pid == getpid() ? 1u : 0u);
        if (ps[i].pid == getpid()) {
            EXPECT_EQ(ps[i].waiting, 1u);
            EXPECT_GT(ps[i].waiting_since_unix_ms, 0);
        }
    }
    WH_OK(whsem_release(a));
    waiter.join();
    __atomic_store_n(stage, 2, __ATOMIC_SEQ_CST);
    EXPECT_EQ(Wait(child), 0);
}

// ---- asynchronous acquisition ----

TEST(PgAsync, PollAndWait)
{
    Sem sem(1);
    whsem_ticket a;
    WH_OK(TryAcquire(sem.s, &a));
    whsem_op op;
    WH_OK(whsem_acquire_async(sem.s, WHSEM_INFINITE, 0, nullptr, nullptr, &op));
    EXPECT_EQ(whsem_op_poll(op), WHSEM_PENDING);
    EXPECT_EQ(whsem_op_wait(op, 20), WHSEM_PENDING);
    WH_OK(whsem_release(a));
    EXPECT_EQ(whsem_op_wait(op, WHSEM_INFINITE), WHSEM_OK);
    whsem_ticket t;
    WH_OK(whsem_op_take_ticket(op, &t));
    WH_OK(whsem_op_free(op));
    WH_OK(whsem_release(t));
}

namespace {
struct CallbackBox {
    std::atomic<int> calls{0};
    std::atomic<whsem_status> status{WHSEM_PENDING};
    std::atomic<whsem_ticket> ticket{0};
};
void WHSEM_CALL OnDone(whsem_op op, whsem_status st, void *ud)
{
    auto *box = static_cast<CallbackBox *>(ud);
    whsem_ticket t = 0;
    if (st == WHSEM_OK) whsem_op_take_ticket(op, &t);
    box->ticket = t;
    box->status = st;
    whsem_op_free(op);
    box->calls++;
}
}  // namespace

TEST(PgAsync, CallbackOnce)
{
    Sem sem(1);
    CallbackBox box;
    whsem_op op;
    WH_OK(whsem_acquire_async(sem.s, 1000, 0, OnDone, &box, &op));
    ASSERT_TRUE(Eventually([&] { return box.calls.load() == 1; }));
    EXPECT_EQ(box.status.load(), WHSEM_OK);
    WH_OK(whsem_release(box.ticket));
    // Timing out, with a ticket held by someone else.
    whsem_ticket a;
    WH_OK(TryAcquire(sem.s, &a));
    CallbackBox late;
    WH_OK(whsem_acquire_async(sem.s, 30, 0, OnDone, &late, &op));
    ASSERT_TRUE(Eventually([&] { return late.calls.load() == 1; }));
    EXPECT_EQ(late.status.load(), WHSEM_TIMEOUT);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_EQ(late.calls.load(), 1);
    WH_OK(whsem_release(a));
}

TEST(PgAsync, CompletionQueueDescriptor)
{
    Sem sem(2);
    whsem_queue q;
    WH_OK(whsem_queue_new(&q));
    int32_t fd;
    WH_OK(whsem_queue_fd(q, &fd));
    whsem_op ops[3];
    for (int i = 0; i < 3; i++) WH_OK(whsem_acquire_queued(sem.s, 200, 0, q, 100 + i, &ops[i]));
    int ok = 0, timeout = 0;
    auto t0 = std::chrono::steady_clock::now();
    while (ok + timeout < 3 && SecondsSince(t0) < 30) {
        struct pollfd p = {fd, POLLIN, 0};
        poll(&p, 1, 1000);
        whsem_op op;
        uint64_t tag;
        while (whsem_queue_pop(q, &op, &tag) == WHSEM_OK) {
            EXPECT_GE(tag, 100u);
            whsem_status st = whsem_op_poll(op);
            if (st == WHSEM_OK) ok++;
            if (st == WHSEM_TIMEOUT) timeout++;
        }
    }
    EXPECT_EQ(ok, 2);
    EXPECT_EQ(timeout, 1);
    for (auto op : ops) WH_OK(whsem_op_free(op)); // releases the untaken tickets
    whsem_ticket a, b;
    WH_OK(TryAcquire(sem.s, &a));
    WH_OK(TryAcquire(sem.s, &b));
    WH_OK(whsem_release(a));
    WH_OK(whsem_release(b));
    WH_OK(whsem_queue_free(q));
}

TEST(PgAsync, CancelFreeAndCloseRacingGrantsLoseNothing)
{
    // Many operations end by cancellation, free, a source or a close while
    // tickets are handed around; afterwards every ticket is back.
    Sem sem(2);
    whsem_cancel src;
    WH_OK(whsem_cancel_new(&src));
    for (int round = 0; round < 30; round++) {
        whsem_ticket a, b;
        WH_OK(TryAcquire(sem.s, &a));
        WH_OK(TryAcquire(sem.s, &b));
        whsem_op ops[4];
        for (auto &op : ops) WH_OK(whsem_acquire_async(sem.s, WHSEM_INFINITE, src, nullptr, nullptr, &op));
        WH_OK(whsem_release(a));
        switch (round % 3) {
        case 0: for (auto op : ops) whsem_op_cancel(op); break;
        case 1: whsem_cancel_trigger(src); break;
        default: break;
        }
        WH_OK(whsem_release(b));
        for (auto op : ops) {
            if (round % 3 == 2) break;
            whsem_status st = whsem_op_wait(op, WHSEM_INFINITE);
            EXPECT_TRUE(st == WHSEM_OK || st == WHSEM_CANCELED) << whsem_status_name(st);
        }
        for (auto op : ops) WH_OK(whsem_op_free(op));
        if (round % 3 == 1) {
            WH_OK(whsem_cancel_free(src));
            WH_OK(whsem_cancel_new(&src));
        }
        // Both tickets come back (frees release untaken ones).
        ASSERT_TRUE(Eventually([&] {
            whsem_ticket x, y;
            if (TryAcquire(sem.s, &x) != WHSEM_OK) return false;
            bool both = TryAcquire(sem.s, &y) == WHSEM_OK;
            if (both) whsem_release(y);
            whsem_release(x);
            return both;
        })) << "round " << round;
    }
    WH_OK(whsem_cancel_free(src));
}

TEST(PgAsync, CloseCompletesPendingOperationsCanceled)
{
    std::string name = UniqueName("aclose");
    whsem_sem s1 = Open(name, 1), s2 = Open(name, 1);
    whsem_ticket a;
    WH_OK(TryAcquire(s1, &a));
    whsem_op op;
    WH_OK(whsem_acquire_async(s2, WHSEM_INFINITE, 0, nullptr, nullptr, &op));
    WH_OK(whsem_close(s2));
    EXPECT_EQ(whsem_op_wait(op, WHSEM_INFINITE), WHSEM_CANCELED);
    EXPECT_NE(std::string(whsem_last_error()).find("closed"), std::string::npos);
    WH_OK(whsem_op_free(op));
    WH_OK(whsem_release(a));
    WH_OK(whsem_close(s1));
}

// ---- lost tickets ----

namespace {
struct LostBox {
    std::atomic<int> calls{0};
    std::atomic<whsem_status> status{WHSEM_PENDING};
};
void WHSEM_CALL OnLost(whsem_ticket, whsem_status st, void *ud)
{
    auto *box = static_cast<LostBox *>(ud);
    box->status = st;
    box->calls++;
}
}  // namespace

TEST(PgLost, WatchIsToldOnceAtReleaseWhenNothingWasLost)
{
    Sem sem(1);
    whsem_ticket a;
    WH_OK(TryAcquire(sem.s, &a));
    LostBox box;
    WH_OK(whsem_ticket_watch(a, 0, OnLost, &box));
    EXPECT_EQ(whsem_ticket_watch(a, 0, OnLost, &box), WHSEM_E_INVALID_ARGUMENT);
    WH_OK(whsem_ticket_check(a));
    WH_OK(whsem_release(a));
    ASSERT_TRUE(Eventually([&] { return box.calls.load() == 1; }));
    EXPECT_EQ(box.status.load(), WHSEM_OK);
}

TEST(PgLost, TerminatedSessionLosesTheTicketAndTheHolderIsTold)
{
    Sem sem(1, "terminate");
    whsem_ticket a;
    WH_OK(TryAcquire(sem.s, &a));
    LostBox box;
    whsem_cancel c;
    WH_OK(whsem_cancel_new(&c));
    WH_OK(whsem_ticket_watch(a, c, OnLost, &box));
    Admin admin;
    // The session that holds index 0 of this name.
    std::string who = admin.Value(
        "SELECT l.pid FROM pg_locks l JOIN whsem.semaphore s ON l.classid = s.id::oid "
        "WHERE l.locktype = 'advisory' AND l.objsubid = 2 AND l.objid = 0 AND l.granted "
        "AND s.name = 'Global\\" + sem.name + "'");
    admin.Exec("SELECT pg_terminate_backend(" + who + ")");
    ASSERT_TRUE(Eventually([&] { return box.calls.load() == 1; }));
    EXPECT_EQ(box.status.load(), WHSEM_E_TICKET_LOST);
    EXPECT_EQ(whsem_ticket_check(a), WHSEM_E_TICKET_LOST);
    // The source was triggered: a wait using it does not start.
    whsem_ticket t;
    EXPECT_EQ(whsem_acquire(sem.s, WHSEM_INFINITE, c, &t), WHSEM_CANCELED);
    // Someone else may have the ticket now; ours is gone, and saying so.
    WH_OK(TryAcquire(sem.s, &t));
    whsem_ticket u;
    EXPECT_EQ(TryAcquire(sem.s, &u), WHSEM_TIMEOUT); // never two
    EXPECT_EQ(whsem_release(a), WHSEM_E_TICKET_LOST);
    EXPECT_NE(std::string(whsem_last_error()).find("lost"), std::string::npos);
    WH_OK(whsem_release(t));
    EXPECT_EQ(box.calls.load(), 1);
    WH_OK(whsem_cancel_free(c));
}

TEST(PgLost, NameClosedWhileItsMarkerIsTakenAgainKeepsNoMarker)
{
    // After a lost session, the new one takes every open name's marker
    // again. A name closed meanwhile must neither be freed under that
    // statement nor keep the marker it brings back.
    Sem sem(1, "remark");
    Admin admin;
    std::string id = admin.Value("SELECT id FROM whsem.semaphore WHERE name = 'Global\\" + sem.name + "'");
    admin.Exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'whsem " +
               std::to_string(getpid()) + " %'");
    // Exclusive: granted once our sessions are gone, it holds the next marker back.
    admin.Exec("SELECT pg_advisory_lock(" + id + ", -1)");
    // A try makes the worker connect again, and the new session waits for
    // the marker. (A try sent before the worker saw its session end fails:
    // another is made.)
    std::string marking = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                          "AND classid = " + id + " AND objid = 4294967295";
    whsem_op op = 0;
    ASSERT_TRUE(Eventually([&] {
        if (admin.Number(marking) == 1) return true;
        if (op && whsem_op_poll(op) != WHSEM_PENDING) {
            whsem_op_free(op);
            op = 0;
        }
        if (!op) EXPECT_EQ(whsem_acquire_async(sem.s, 0, 0, nullptr, nullptr, &op), WHSEM_OK);
        return false;
    }));
    whsem_close(sem.s);
    sem.s = 0;
    EXPECT_EQ(whsem_op_wait(op, 10000), WHSEM_CANCELED);
    WH_OK(whsem_op_free(op));
    admin.Exec("SELECT pg_advisory_unlock(" + id + ", -1)");
    // Nobody has the name open: its marker is free for anyone.
    ASSERT_TRUE(Eventually([&] {
        if (admin.Value("SELECT pg_try_advisory_lock(" + id + ", -1)") != "t") return false;
        admin.Exec("SELECT pg_advisory_unlock(" + id + ", -1)");
        return true;
    }));
    // Names opened afterwards are what they say.
    Sem other(2, "after-remark");
    whsem_ticket t;
    WH_OK(TryAcquire(other.s, &t));
    WH_OK(whsem_release(t));
}

TEST(PgLost, SharedMemoryTicketsCannotBeWatched)
{
    whsem_sem s;
    std::string name = UniqueName("local");
    WH_OK(whsem_open(name.c_str(), 1, nullptr, &s));
    whsem_ticket t;
    WH_OK(TryAcquire(s, &t));
    EXPECT_EQ(whsem_ticket_watch(t, 0, OnLost, nullptr), WHSEM_E_UNSUPPORTED);
    WH_OK(whsem_ticket_check(t));
    WH_OK(whsem_release(t));
    WH_OK(whsem_close(s));
    whsem_unlink(name.c_str(), 0);
}

// ---- refusals ----

TEST(PgRefused, UnreachableServerFailsPromptly)
{
    // A port nobody listens on (the cluster's, plus one, on another host
    // form): refused at once.
    std::string b = "host=127.0.0.1 port=1 dbname=postgres connect_timeout=2";
    whsem_open_options o = Options(b);
    whsem_sem s;
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(whsem_open(UniqueName("refused").c_str(), 1, &o, &s), WHSEM_E_UNAVAILABLE) << whsem_last_error();
    EXPECT_LT(SecondsSince(t0), 30);
    EXPECT_NE(std::string(whsem_last_error()).find("connect"), std::string::npos)
        << whsem_last_error();
}

TEST(PgRefused, WrongPasswordIsAccessDeniedAndNeverShown)
{
    std::string b = Tcp("postgres", "whsem_pw") + " password=not-the-Secret-9";
    whsem_open_options o = Options(b);
    whsem_sem s;
    EXPECT_EQ(whsem_open(UniqueName("pw").c_str(), 1, &o, &s), WHSEM_E_ACCESS_DENIED);
    std::string msg = whsem_last_error();
    EXPECT_NE(msg.find("authentication failed"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("not-the-Secret-9"), std::string::npos) << msg;
    // The right one, through the URI form.
    const Cluster &c = cluster();
    std::string uri = "postgresql://whsem_pw:sekrit-pw-42@127.0.0.1:" + std::to_string(c.port) +
                      "/postgres";
    o = Options(uri);
    WH_OK(whsem_open(UniqueName("pw").c_str(), 1, &o, &s));
    WH_OK(whsem_close(s));
}

TEST(PgRefused, WrongDatabaseSaysSo)
{
    std::string b = Socket("no_such_database_here");
    whsem_open_options o = Options(b);
    whsem_sem s;
    EXPECT_EQ(whsem_open(UniqueName("db").c_str(), 1, &o, &s), WHSEM_E_UNAVAILABLE);
    EXPECT_NE(std::string(whsem_last_error()).find("no_such_database_here"), std::string::npos)
        << whsem_last_error();
}

TEST(PgRefused, InvalidConnectionStringIsAnArgumentError)
{
    std::string b = "host=x port";
    whsem_open_options o = Options(b);
    whsem_sem s;
    EXPECT_EQ(whsem_open(UniqueName("bad").c_str(), 1, &o, &s), WHSEM_E_INVALID_ARGUMENT);
}

TEST(PgRefused, UserWithoutCreateRightsGetsAClearError)
{
    // whsem_fresh has no whsem schema yet, and whsem_plain may not create one.
    std::string b = Socket("whsem_fresh", "whsem_plain");
    whsem_open_options o = Options(b);
    whsem_sem s;
    EXPECT_EQ(whsem_open(UniqueName("rights").c_str(), 1, &o, &s), WHSEM_E_ACCESS_DENIED);
    std::string msg = whsem_last_error();
    EXPECT_NE(msg.find("whsem.semaphore"), std::string::npos) << msg;
    EXPECT_NE(msg.find("permission denied"), std::string::npos) << msg;
}

TEST(PgRefused, MissingLibpqSaysWhatToInstall)
{
    // In a process of its own: this one has libpq loaded already.
    std::string cli = WHSEM_CLI;
    std::string out = "/tmp/" + UniqueName("libpq") + ".err";
    std::string cmd = "WHSEM_LIBPQ=libpq-that-is-not-there.so.5 " + cli + " status --backend '" +
                      Socket() + "' x 2> " + out;
    EXPECT_NE(system(cmd.c_str()), 0);
    EXPECT_EQ(system(("grep -q 'WHSEM_E_UNAVAILABLE.*apt install libpq5' " + out).c_str()), 0);
    unlink(out.c_str());
}

TEST(PgRefused, NoSharedMemoryFileIsCreated)
{
    std::string name = UniqueName("noshm");
    whsem_sem s = Open(name, 1);
    whsem_ticket t;
    WH_OK(TryAcquire(s, &t));
    DIR *d = opendir("/dev/shm");
    ASSERT_NE(d, nullptr);
    while (struct dirent *e = readdir(d))
        EXPECT_EQ(std::string(e->d_name).find(name), std::string::npos) << e->d_name;
    closedir(d);
    WH_OK(whsem_release(t));
    WH_OK(whsem_close(s));
}

// ---- the CLI ----

TEST(PgCli, RunStatusListRmWithBackend)
{
    std::string name = UniqueName("cli");
    std::string cli = WHSEM_CLI;
    std::string env = "WHSEM_BACKEND='" + Socket() + "' ";
    EXPECT_EQ(system((env + cli + " run " + name + " 1 -- true").c_str()), 0);
    std::string out = "/tmp/" + name + ".out";
    EXPECT_EQ(system((cli + " --help >/dev/null; " + cli + " status --backend '" + Socket() +
                      "' " + name + " > " + out)
                         .c_str()),
              0);
    EXPECT_EQ(system(("grep -q '^backend: *PostgreSQL$' " + out).c_str()), 0);
    EXPECT_EQ(system((env + cli + " list | grep -qx 'Global\\\\" + name + "'").c_str()), 0);
    EXPECT_EQ(system((env + cli + " rm " + name).c_str()), 0);
    EXPECT_NE(system((env + cli + " status " + name + " 2>/dev/null").c_str()), 0);
    unlink(out.c_str());
}

TEST(PgCli, RunStopsTheCommandWhenItsTicketIsLost)
{
    std::string name = UniqueName("clilost");
    std::string marker = "/tmp/" + name + ".started";
    std::string cmd = "WHSEM_BACKEND='" + Socket() + "' exec " + WHSEM_CLI + " run " + name +
                      " 1 -- sh -c 'touch " + marker + "; exec sleep 60'";
    pid_t whsem = fork();
    if (whsem == 0) {
        execl("/bin/sh", "sh", "-c", cmd.c_str(), (char *)nullptr);
        _exit(127);
    }
    ASSERT_TRUE(Eventually([&] { return access(marker.c_str(), F_OK) == 0; }));
    Admin admin;
    std::string who = admin.Value(
        "SELECT l.pid FROM pg_locks l JOIN whsem.semaphore s ON l.classid = s.id::oid "
        "WHERE l.locktype = 'advisory' AND l.objsubid = 2 AND l.objid = 0 AND l.granted "
        "AND s.name = 'Global\\" + name + "'");
    admin.Exec("SELECT pg_terminate_backend(" + who + ")");
    // The command is stopped (it would sleep a minute) and whsem says so.
    auto t0 = std::chrono::steady_clock::now();
    int st = 0;
    ASSERT_EQ(waitpid(whsem, &st, 0), whsem);
    EXPECT_LT(SecondsSince(t0), 30);
    ASSERT_TRUE(WIFEXITED(st));
    EXPECT_EQ(WEXITSTATUS(st), 125);
    unlink(marker.c_str());
}

TEST(PgLost, TerminatedWaitingSessionsAreReplacedAndTheWaitGoesOn)
{
    Sem sem(1, "termwait");
    whsem_ticket held;
    WH_OK(TryAcquire(sem.s, &held));
    int *got = Shared<int>();
    pid_t child = Child([&] {
        whsem_sem s = Open(sem.name, 1);
        whsem_ticket t;
        whsem_status st = whsem_acquire(s, 60000, 0, &t);
        if (st != WHSEM_OK) {
            fprintf(stderr, "child: %s: %s\n", whsem_status_name(st), whsem_last_error());
            return 1;
        }
        __atomic_store_n(got, 1, __ATOMIC_SEQ_CST);
        while (__atomic_load_n(got, __ATOMIC_SEQ_CST) != 2) usleep(1000);
        return whsem_release(t) == WHSEM_OK ? 0 : 2;
    });
    Admin admin;
    std::string waiting = "SELECT l.pid FROM pg_locks l JOIN whsem.semaphore s ON "
                          "l.classid = s.id::oid WHERE l.locktype = 'advisory' AND "
                          "l.objsubid = 2 AND l.objid >= 0 AND NOT l.granted AND s.name = "
                          "'Global\\" + sem.name + "'";
    // The child's wait is queued in the server; end its sessions twice
    // over, each time once it has queued again.
    for (int round = 0; round < 2; round++) {
        ASSERT_TRUE(Eventually([&] {
            return admin.Number("SELECT count(*) FROM (" + waiting + ") w") > 0;
        }));
        admin.Exec("SELECT pg_terminate_backend(pid) FROM (" + waiting + ") w");
    }
    ASSERT_TRUE(Eventually([&] {
        return admin.Number("SELECT count(*) FROM (" + waiting + ") w") > 0;
    }));
    EXPECT_EQ(__atomic_load_n(got, __ATOMIC_SEQ_CST), 0); // ours is still held
    WH_OK(whsem_release(held));
    ASSERT_TRUE(Eventually([&] { return __atomic_load_n(got, __ATOMIC_SEQ_CST) == 1; }));
    whsem_ticket t;
    EXPECT_EQ(TryAcquire(sem.s, &t), WHSEM_TIMEOUT); // never two
    __atomic_store_n(got, 2, __ATOMIC_SEQ_CST);
    EXPECT_EQ(Wait(child), 0);
    // A release returns before the server has the index back: wait for it.
    WH_OK(whsem_acquire(sem.s, 30000, 0, &t));
    WH_OK(whsem_release(t));
}

// A ticket a wait obtained goes back on the session that waited for it,
// a query runs on another: it must not show the released ticket taken.
TEST(PgSemantics, QueryRightAfterAReleaseNeverShowsTheTicketTaken)
{
    Sem sem(1, "queryrel");
    for (int round = 0; round < 20; round++) {
        whsem_ticket first;
        WH_OK(TryAcquire(sem.s, &first));
        whsem_ticket waited = 0;
        std::thread waiter([&] { EXPECT_EQ(whsem_acquire(sem.s, 30000, 0, &waited), WHSEM_OK); });
        ASSERT_TRUE(Eventually([&] {
            whsem_info info{};
            info.struct_size = sizeof info;
            size_t n;
            return whsem_query(sem.s, &info, nullptr, 0, &n) == WHSEM_OK && info.waiters == 1;
        }));
        WH_OK(whsem_release(first));
        waiter.join();
        WH_OK(whsem_release(waited));
        whsem_info info{};
        info.struct_size = sizeof info;
        size_t n;
        WH_OK(whsem_query(sem.s, &info, nullptr, 0, &n));
        ASSERT_EQ(info.free_count, 1) << "round " << round;
        ASSERT_EQ(n, 0u) << "round " << round;
    }
}

// Something in the process closes every descriptor it did not open (as
// closefrom-style cleanup does): the sessions end, and so do their
// tickets. The holder is told at once, and nothing spins on the dead
// descriptors.
TEST(PgLost, ClosedSocketsLoseTheTicketAndTheHolderIsTold)
{
    Sem sem(1, "closed");
    whsem_ticket t;
    WH_OK(TryAcquire(sem.s, &t));
    LostBox box;
    WH_OK(whsem_ticket_watch(t, 0, OnLost, &box));
    std::vector<int> sockets;
    DIR *d = opendir("/proc/self/fd");
    ASSERT_NE(d, nullptr);
    while (dirent *e = readdir(d)) {
        char link[64] = "";
        std::string path = std::string("/proc/self/fd/") + e->d_name;
        ssize_t len = readlink(path.c_str(), link, sizeof link - 1);
        if (len > 0 && strncmp(link, "socket:", 7) == 0) sockets.push_back(atoi(e->d_name));
    }
    closedir(d);
    ASSERT_FALSE(sockets.empty());
    for (int fd : sockets) close(fd);
    ASSERT_TRUE(Eventually([&] { return box.calls.load() == 1; }, 10));
    EXPECT_EQ(box.status.load(), WHSEM_E_TICKET_LOST);
    // The worker does not spin on what it can no longer poll.
    timespec c0, c1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    usleep(1000000);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    double cpu = (double)(c1.tv_sec - c0.tv_sec) + (double)(c1.tv_nsec - c0.tv_nsec) / 1e9;
    EXPECT_LT(cpu, 0.5) << "CPU seconds spent in one second of doing nothing";
    EXPECT_EQ(whsem_release(t), WHSEM_E_TICKET_LOST);
    // The library connects again for what comes next.
    whsem_ticket u;
    WH_OK(whsem_acquire(sem.s, 30000, 0, &u));
    WH_OK(whsem_release(u));
}
