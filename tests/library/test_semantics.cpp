// SPDX-License-Identifier: MIT
// The semantics of SPEC.md inside one process: counting, max counts,
// timeouts, cancellation, close, threads (and a few other processes where
// one process cannot show it).
#include "util.h"

#include <climits>
#include <cstring>
#include <mutex>
#include <vector>

#ifndef _WIN32
#include <sys/stat.h>
#endif

using namespace whtest;

TEST(Semantics, CountsUpToMaxCount)
{
    Sem sem(3);
    whsem_ticket t[4];
    for (int i = 0; i < 3; i++) WH_OK(whsem_acquire(sem.get(), 0, 0, &t[i]));
    WH_EXPECT(WHSEM_TIMEOUT, whsem_acquire(sem.get(), 0, 0, &t[3]));
    WH_EXPECT(WHSEM_TIMEOUT, whsem_acquire(sem.get(), 20, 0, &t[3]));
    whsem_info info = Info(sem.get());
    EXPECT_EQ(info.max_count, 3);
    EXPECT_EQ(info.free_count, 0);
    WH_OK(whsem_release(t[1]));
    WH_OK(whsem_acquire(sem.get(), 0, 0, &t[3]));
    for (int i : {0, 2, 3}) WH_OK(whsem_release(t[i]));
    EXPECT_EQ(InfoWithFree(sem.get(), 3).free_count, 3);
}

// Since 1.1 (1.0 left it untouched): a caller that forgets to check the
// status holds the invalid handle 0, not a stale ticket it might release.
TEST(Semantics, OutTicketIsZeroUnlessATicketWasAcquired)
{
    Sem sem(1);
    whsem_ticket held = 0, t = 0xdeadbeef;
    WH_OK(whsem_acquire(sem.get(), 0, 0, &held));
    WH_EXPECT(WHSEM_TIMEOUT, whsem_acquire(sem.get(), 0, 0, &t));
    EXPECT_EQ(t, 0u);
    WH_OK(whsem_release(held));
}

TEST(Semantics, IntMaxTickets)
{
    Sem sem(INT32_MAX);
    std::vector<whsem_ticket> t(1000);
    for (auto &x : t) WH_OK(whsem_acquire(sem.get(), 0, 0, &x));
    EXPECT_EQ(Info(sem.get()).free_count, INT32_MAX - 1000);
    for (auto x : t) WH_OK(whsem_release(x));
    EXPECT_EQ(Info(sem.get()).free_count, INT32_MAX);
}

TEST(Semantics, MaxCountMismatchIsAnError)
{
    Sem sem(2);
    whsem_sem other = 0;
    WH_EXPECT(WHSEM_E_MAX_COUNT_MISMATCH, whtest_open(sem.c_name(), 3, nullptr, &other));
    EXPECT_NE(strstr(whsem_last_error(), "max count 2"), nullptr) << whsem_last_error();
    WH_OK(whtest_open(sem.c_name(), 2, nullptr, &other));
    WH_OK(whsem_close(other));
}

TEST(Semantics, ASemaphoreNobodyHasOpenIsReplacedByAnotherMaxCount)
{
    std::string n = UniqueName("stale");
    whsem_sem s = 0;
    WH_OK(whtest_open(n.c_str(), 2, nullptr, &s));
    WH_OK(whsem_close(s));
    // Nobody has it open: a new max count replaces it.
    WH_OK(whtest_open(n.c_str(), 3, nullptr, &s));
    int32_t max = 0;
    WH_OK(whsem_max_count(s, &max));
    EXPECT_EQ(max, 3);
    WH_OK(whsem_close(s));
    // A dead process's semaphore too, even with its tickets.
    Child dead({"hold", n, "3", "1"});
    ASSERT_TRUE(Eventually([&] {
        whsem_sem d = 0;
        if (whtest_open_existing(n.c_str(), nullptr, &d) != WHSEM_OK) return false;
        bool holds = Info(d).free_count == 2;
        whsem_close(d);
        return holds;
    }));
    EXPECT_EQ(dead.Kill(), kKilled);
    // On PostgreSQL a killed process has the name open until the server
    // sees its session end (src/pg/DESIGN.md, "The max count").
    if (OnSharedMemory()) {
        WH_OK(whtest_open(n.c_str(), 4, nullptr, &s));
    } else {
        ASSERT_TRUE(Eventually([&] { return whtest_open(n.c_str(), 4, nullptr, &s) == WHSEM_OK; }));
    }
    EXPECT_EQ(Info(s).free_count, 4);
    // While a live process has it open, the max count is its max count.
    Child live({"open", n, "4"});
    ASSERT_TRUE(Eventually([&] { return Info(s).processes == 2; }));
    WH_OK(whsem_close(s));
    WH_EXPECT(WHSEM_E_MAX_COUNT_MISMATCH, whtest_open(n.c_str(), 5, nullptr, &s));
    EXPECT_EQ(live.Kill(), kKilled);
    WH_EXPECT(UnlinkUnused(), whsem_unlink(n.c_str(), 0));
}

TEST(Semantics, TwoHandlesShareOnePool)
{
    Sem sem(2);
    whsem_sem second = 0;
    WH_OK(whtest_open(sem.c_name(), 2, nullptr, &second));
    whsem_ticket a, b, c;
    WH_OK(whsem_acquire(sem.get(), 0, 0, &a));
    WH_OK(whsem_acquire(second, 0, 0, &b));
    WH_EXPECT(WHSEM_TIMEOUT, whsem_acquire(second, 0, 0, &c));
    // A ticket outlives the handle it came from.
    WH_OK(whsem_close(second));
    WH_EXPECT(WHSEM_TIMEOUT, whsem_acquire(sem.get(), 0, 0, &c));
    WH_OK(whsem_release(b));
    WH_OK(whsem_acquire(sem.get(), 0, 0, &c));
    WH_OK(whsem_release(a));
    WH_OK(whsem_release(c));
}

TEST(Semantics, TicketsOutliveEveryHandle)
{
    std::string n = UniqueName("outlive");
    whsem_sem s = 0;
    WH_OK(whtest_open(n.c_str(), 1, nullptr, &s));
    whsem_ticket t;
    WH_OK(whsem_acquire(s, 0, 0, &t));
    WH_OK(whsem_close(s));
    // The ticket still holds the only ticket for everyone.
    WH_OK(whtest_open(n.c_str(), 1, nullptr, &s));
    whsem_ticket u;
    WH_EXPECT(WHSEM_TIMEOUT, whsem_acquire(s, 0, 0, &u));
    WH_OK(whsem_close(s));
    WH_OK(whsem_release(t));
    WH_OK(whtest_open(n.c_str(), 1, nullptr, &s));
    WH_OK(whsem_acquire(s, 0, 0, &u));
    WH_OK(whsem_release(u));
    WH_OK(whsem_close(s));
    WH_EXPECT(UnlinkUnused(), whsem_unlink(n.c_str(), 0));
}

TEST(Semantics, InfiniteWaitEndsWhenATicketIsReleased)
{
    Sem sem(1);
    whsem_ticket held;
    WH_OK(whsem_acquire(sem.get(), 0, 0, &held));
    std::atomic<int> result{-100};
    std::thread waiter([&] {
        whsem_ticket t = 0;
        result = whsem_acquire(sem.get(), WHSEM_INFINITE, 0, &t);
        if (result == WHSEM_OK) whsem_release(t);
    });
    ASSERT_TRUE(Eventually([&] { return Info(sem.get()).waiters == 1; }));
    EXPECT_EQ(result.load(), -100);
    WH_OK(whsem_release(held));
    waiter.join();
    EXPECT_EQ(result.load(), WHSEM_OK);
    EXPECT_EQ(Info(sem.get()).waiters, 0u);
}

TEST(Semantics, TimeoutReturnsNoTicket)
{
    Sem sem(1);
    whsem_ticket held, t = 0;
    WH_OK(whsem_acquire(sem.get(), 0, 0, &held));
    auto start = std::chrono::steady_clock::now();
    WH_EXPECT(WHSEM_TIMEOUT, whsem_acquire(sem.get(), 50, 0, &t));
    // Never early (the deadline is on CLOCK_MONOTONIC).
    EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(50));
    EXPECT_EQ(t, 0u);
    EXPECT_EQ(Info(sem.get()).waiters, 0u);
    WH_OK(whsem_release(held));
}

TEST(Semantics, TriggeredSourceCancelsEvenWhenATicketIsFree)
{
    Sem sem(1);
    whsem_cancel c;
    WH_OK(whsem_cancel_new(&c));
    WH_OK(whsem_cancel_trigger(c));
    WH_OK(whsem_cancel_trigger(c)); // idempotent
    whsem_ticket t = 0;
    WH_EXPECT(WHSEM_CANCELED, whsem_acquire(sem.get(), 0, c, &t));
    WH_EXPECT(WHSEM_CANCELED, whsem_acquire(sem.get(), WHSEM_INFINITE, c, &t));
    EXPECT_EQ(t, 0u);
    EXPECT_EQ(Info(sem.get()).free_count, 1);
    WH_OK(whsem_cancel_free(c));
}

TEST(Semantics, TriggerWakesEveryWaitUsingTheSource)
{
    Sem a(1, "cancel-a"), b(1, "cancel-b");
    whsem_ticket ha, hb;
    WH_OK(whsem_acquire(a.get(), 0, 0, &ha));
    WH_OK(whsem_acquire(b.get(), 0, 0, &hb));
    whsem_cancel c;
    WH_OK(whsem_cancel_new(&c));
    std::vector<std::thread> waiters;
    std::atomic<int> canceled{0};
    for (int i = 0; i < 6; i++)
        waiters.emplace_back([&, i] {
            whsem_ticket t;
            if (whsem_acquire(i % 2 ? a.get() : b.get(), WHSEM_INFINITE, c, &t) == WHSEM_CANCELED)
                canceled++;
        });
    ASSERT_TRUE(Eventually([&] { return Info(a.get()).waiters == 3 && Info(b.get()).waiters == 3; }));
    WH_OK(whsem_cancel_trigger(c));
    for (auto &w : waiters) w.join();
    EXPECT_EQ(canceled.load(), 6);
    EXPECT_EQ(Info(a.get()).waiters, 0u);
    EXPECT_EQ(Info(b.get()).free_count, 0); // nothing was lost or created
    WH_OK(whsem_release(ha));
    WH_OK(whsem_release(hb));
    EXPECT_EQ(InfoWithFree(a.get(), 1).free_count, 1);
    WH_OK(whsem_cancel_free(c));
}

TEST(Semantics, FreeingASourceLeavesItsWaitsWaiting)
{
    Sem sem(1);
    whsem_ticket held;
    WH_OK(whsem_acquire(sem.get(), 0, 0, &held));
    whsem_cancel c;
    WH_OK(whsem_cancel_new(&c));
    std::atomic<int> result{-100};
    std::thread waiter([&] {
        whsem_ticket t;
        result = whsem_acquire(sem.get(), WHSEM_INFINITE, c, &t);
        if (result == WHSEM_OK) whsem_release(t);
    });
    ASSERT_TRUE(Eventually([&] { return Info(sem.get()).waiters == 1; }));
    WH_OK(whsem_cancel_free(c));
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_cancel_trigger(c));
    WH_OK(whsem_release(held));
    waiter.join();
    EXPECT_EQ(result.load(), WHSEM_OK);
}

TEST(Semantics, CloseEndsWaitsOnThatHandle)
{
    Sem sem(1);
    whsem_sem second = 0;
    WH_OK(whtest_open(sem.c_name(), 1, nullptr, &second));
    whsem_ticket held;
    WH_OK(whsem_acquire(sem.get(), 0, 0, &held));
    std::atomic<int> on_second{-100}, on_first{-100};
    std::thread w2([&] {
        whsem_ticket t;
        on_second = whsem_acquire(second, WHSEM_INFINITE, 0, &t);
    });
    std::thread w1([&] {
        whsem_ticket t;
        on_first = whsem_acquire(sem.get(), 5000, 0, &t);
        if (on_first == WHSEM_OK) whsem_release(t);
    });
    ASSERT_TRUE(Eventually([&] { return Info(sem.get()).waiters == 2; }));
    WH_OK(whsem_close(second));
    w2.join();
    EXPECT_EQ(on_second.load(), WHSEM_CANCELED);
    EXPECT_EQ(on_first.load(), -100); // the other handle's wait goes on
    WH_OK(whsem_release(held));
    w1.join();
    EXPECT_EQ(on_first.load(), WHSEM_OK);
}

TEST(Semantics, AWaiterPastTheFairnessBoundGetsTheTicketNotALateProcess)
{
    // A waiter that has waited longer than the fairness bound (2 ms) gets
    // the next released ticket handed to it: a try-acquire by another
    // process right after the release finds nothing free, whether or not
    // the waiter has woken up. (Fairness is between processes: a grant
    // belongs to the whole process that waited.)
    Sem sem(1);
    whsem_ticket held;
    WH_OK(whsem_acquire(sem.get(), 0, 0, &held));
    std::atomic<int> got{-100};
    std::atomic<bool> may_release{false};
    std::thread waiter([&] {
        whsem_ticket t;
        got = whsem_acquire(sem.get(), WHSEM_INFINITE, 0, &t);
        while (!may_release) std::this_thread::yield();
        if (got == WHSEM_OK) whsem_release(t);
    });
    ASSERT_TRUE(Eventually([&] { return Info(sem.get()).waiters == 1; }));
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    WH_OK(whsem_release(held));
    Child late({"try", sem.name(), "1"});
    EXPECT_EQ(late.Reap(), 0); // 0: it found nothing free
    may_release = true;
    waiter.join();
    EXPECT_EQ(got.load(), WHSEM_OK);
}

TEST(Semantics, ThreadsNeverExceedMaxCount)
{
    Sem sem(3);
    std::atomic<int> inside{0}, high{0}, total{0};
    // Fewer on Windows: under Wine every lock is a wineserver call.
    const int kRounds = kWindows ? 1000 : Rounds(3000, 300);
    std::vector<std::thread> threads;
    for (int i = 0; i < 12; i++)
        threads.emplace_back([&] {
            for (int k = 0; k < kRounds; k++) {
                whsem_ticket t;
                whsem_status st = whsem_acquire(sem.get(), k % 3 == 0 ? 0 : WHSEM_INFINITE, 0, &t);
                if (st == WHSEM_TIMEOUT) continue;
                if (st != WHSEM_OK) {
                    ADD_FAILURE() << whsem_status_name(st) << whsem_last_error();
                    return;
                }
                int now = ++inside;
                int h = high.load();
                while (now > h && !high.compare_exchange_weak(h, now)) {
                }
                if (k % 64 == 0) std::this_thread::yield();
                --inside;
                total++;
                if (whsem_release(t) != WHSEM_OK) ADD_FAILURE() << whsem_last_error();
            }
        });
    for (auto &t : threads) t.join();
    EXPECT_LE(high.load(), 3);
    EXPECT_GE(high.load(), 1);
    EXPECT_GT(total.load(), 12 * (kWindows ? 300 : Rounds(1000, 100)));
    whsem_info info = InfoWithFree(sem.get(), 3);
    EXPECT_EQ(info.free_count, 3);
    EXPECT_EQ(info.waiters, 0u);
}

TEST(Semantics, ConcurrentDoubleReleaseSucceedsOnce)
{
    Sem sem(1);
    for (int round = 0; round < (kWindows ? 100 : 200); round++) {
        whsem_ticket t;
        WH_OK(whsem_acquire(sem.get(), 0, 0, &t));
        std::atomic<int> ok{0}, invalid{0};
        std::vector<std::thread> th;
        for (int i = 0; i < 4; i++)
            th.emplace_back([&] {
                whsem_status st = whsem_release(t);
                if (st == WHSEM_OK) ok++;
                else if (st == WHSEM_E_INVALID_HANDLE) invalid++;
            });
        for (auto &x : th) x.join();
        ASSERT_EQ(ok.load(), 1);
        ASSERT_EQ(invalid.load(), 3);
    }
    EXPECT_EQ(Info(sem.get()).free_count, 1);
}

TEST(Semantics, ConcurrentOpenCloseOfOneName)
{
    std::string n = UniqueName("openclose");
    std::vector<std::thread> th;
    std::atomic<int> failures{0};
    for (int i = 0; i < 6; i++)
        th.emplace_back([&] {
            for (int k = 0; k < (kWindows ? 100 : 300); k++) {
                whsem_sem s;
                if (whtest_open(n.c_str(), 2, nullptr, &s) != WHSEM_OK) {
                    failures++;
                    continue;
                }
                whsem_ticket t;
                whsem_status st = whsem_acquire(s, 1000, 0, &t);
                if (st == WHSEM_OK) {
                    if (k % 2) whsem_close(s), s = 0; // release after close, sometimes
                    if (whsem_release(t) != WHSEM_OK) failures++;
                } else if (st != WHSEM_TIMEOUT) {
                    failures++;
                }
                if (s && whsem_close(s) != WHSEM_OK) failures++;
            }
        });
    for (auto &t : th) t.join();
    EXPECT_EQ(failures.load(), 0);
    whsem_sem s;
    WH_OK(whtest_open(n.c_str(), 2, nullptr, &s));
    EXPECT_EQ(InfoWithFree(s, 2).free_count, 2);
    WH_OK(whsem_close(s));
    WH_EXPECT(UnlinkUnused(), whsem_unlink(n.c_str(), 0));
}

// Both tickets of a max-2 semaphore held by this process, and a thread of
// it waiting for a third: what the query tests look at.
struct TwoHeldOneWaiting {
    whsem_sem sem;
    whsem_ticket a = 0, b = 0;
    std::thread waiter;
    void Start(whsem_sem s)
    {
        sem = s;
        WH_OK(whsem_acquire(sem, 0, 0, &a));
        WH_OK(whsem_acquire(sem, 0, 0, &b));
        waiter = std::thread([this] {
            whsem_ticket t;
            if (whsem_acquire(sem, WHSEM_INFINITE, 0, &t) == WHSEM_OK) whsem_release(t);
        });
        ASSERT_TRUE(Eventually([&] { return Info(sem).waiters == 1; }));
    }
    // The waiter gets a's ticket and gives it back.
    void Finish()
    {
        WH_OK(whsem_release(a));
        waiter.join();
        WH_OK(whsem_release(b));
    }
};

TEST(Semantics, QueryReportsHoldersAndWaiters)
{
    Sem sem(2);
    TwoHeldOneWaiting held;
    ASSERT_NO_FATAL_FAILURE(held.Start(sem.get()));
    whsem_info info{};
    info.struct_size = sizeof info;
    whsem_holder holders[4];
    size_t n = 0;
    WH_OK(whsem_query(sem.get(), &info, holders, 4, &n));
    ASSERT_EQ(n, 1u);
    EXPECT_EQ(holders[0].pid, CurrentPid());
    EXPECT_EQ(holders[0].tickets, 2);
    EXPECT_EQ(holders[0].waiting, 1u);
    // Stamped by the scan that the query runs, so never zero, never future.
    EXPECT_GT(holders[0].since_unix_ms, 0);
    EXPECT_LE(holders[0].since_unix_ms,
              std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                      .count() +
                  1000);
    EXPECT_EQ(info.holders, 1u);
    EXPECT_EQ(info.processes, 1u);
    EXPECT_EQ(info.free_count, 0);
    // Ask-then-fill: capacity 0 still counts.
    WH_OK(whsem_query(sem.get(), nullptr, nullptr, 0, &n));
    EXPECT_EQ(n, 1u);
    held.Finish();
    InfoWithFree(sem.get(), 2);
    WH_OK(whsem_query(sem.get(), &info, holders, 4, &n));
    EXPECT_EQ(n, 0u);
    EXPECT_EQ(info.free_count, 2);
}

// The 1.1 query: every process that has the name open, holding or not.
TEST(Semantics, QueryProcessesListsThisProcessAsItself)
{
    Sem sem(2);
    whsem_process ps[4]{};
    ps[0].struct_size = sizeof ps[0];
    size_t n = 0;
    whsem_info info{};
    info.struct_size = sizeof info;
    // Open but holding nothing: listed all the same (whsem_query would not).
    WH_OK(whsem_query_processes(sem.get(), &info, ps, 4, &n));
    ASSERT_EQ(n, 1u);
    EXPECT_EQ(ps[0].struct_size, sizeof ps[0]);
    EXPECT_EQ(ps[0].pid, CurrentPid());
    EXPECT_EQ(ps[0].is_self, 1u);
    EXPECT_EQ(ps[0].tickets, 0);
    EXPECT_EQ(ps[0].holding_since_unix_ms, 0);
    ASSERT_NE(ps[0].host, nullptr);
    EXPECT_TRUE(IsThisHost(ps[0].host)) << ps[0].host;
    EXPECT_EQ(info.holders, 0u);
    EXPECT_EQ(info.processes, 1u);
    TwoHeldOneWaiting held;
    ASSERT_NO_FATAL_FAILURE(held.Start(sem.get()));
    WH_OK(whsem_query_processes(sem.get(), &info, ps, 4, &n));
    ASSERT_EQ(n, 1u);
    EXPECT_EQ(ps[0].tickets, 2);
    EXPECT_EQ(ps[0].waiting, 1u);
    EXPECT_GT(ps[0].holding_since_unix_ms, 0);
    EXPECT_EQ(info.holders, 1u);
    // Ask, then fill; and an element this version does not know the size
    // of is refused, not overrun.
    WH_OK(whsem_query_processes(sem.get(), nullptr, nullptr, 0, &n));
    EXPECT_EQ(n, 1u);
    ps[0].struct_size = sizeof ps[0] - 8;
    WH_EXPECT(WHSEM_E_INVALID_ARGUMENT, whsem_query_processes(sem.get(), nullptr, ps, 4, &n));
    EXPECT_NE(std::string(whsem_last_error()).find("struct_size"), std::string::npos);
    WH_EXPECT(WHSEM_E_INVALID_ARGUMENT, whsem_query_processes(sem.get(), nullptr, nullptr, 1, &n));
    WH_EXPECT(WHSEM_E_INVALID_ARGUMENT, whsem_query_processes(sem.get(), nullptr, nullptr, 0, nullptr));
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_query_processes(0, nullptr, nullptr, 0, &n));
    held.Finish();
}

// A newer caller's larger elements: this version fills what it knows,
// zeroes the rest, and keeps the caller's stride.
TEST(Semantics, QueryProcessesKeepsALargerElementSize)
{
    Sem sem(1);
    struct Bigger {
        whsem_process p;
        uint64_t later[3];
    } big[2];
    memset(big, 0xab, sizeof big);
    big[0].p.struct_size = sizeof big[0];
    size_t n = 0;
    WH_OK(whsem_query_processes(sem.get(), nullptr, &big[0].p, 2, &n));
    ASSERT_EQ(n, 1u);
    EXPECT_EQ(big[0].p.struct_size, sizeof big[0]);
    EXPECT_EQ(big[0].p.is_self, 1u);
    for (uint64_t v : big[0].later) EXPECT_EQ(v, 0u);
    EXPECT_EQ(big[1].p.struct_size, 0xababababu); // not written: one process
}

// On Windows, which has no file modes, any group or other bit opens the
// objects to every authenticated user and owner-only keeps the creator's
// default DACL. Both must open, share one pool, and refuse what the mode
// check refuses (test_api.cpp).
TEST(Semantics, ModesOpenAndShare)
{
    whsem_open_options o{};
    o.struct_size = sizeof o;
    o.mode = 0666;
    Sem shared(1, "mode-shared", &o);
    o.mode = 0600;
    Sem owner(1, "mode-owner", &o);
    whsem_sem again;
    WH_OK(whtest_open(shared.c_name(), 1, nullptr, &again));
    whsem_ticket t, u;
    WH_OK(whsem_acquire(again, 0, 0, &t));
    WH_EXPECT(WHSEM_TIMEOUT, whsem_acquire(shared.get(), 0, 0, &u));
    WH_OK(whsem_release(t));
    WH_OK(whsem_close(again));
    WH_OK(whsem_acquire(owner.get(), 0, 0, &t));
    WH_OK(whsem_release(t));
}

#ifndef _WIN32
TEST(Semantics, SegmentModeIsExactAndNotMaskedByUmask)
{
    mode_t old = umask(077);
    whsem_open_options o{};
    o.struct_size = sizeof o;
    o.mode = 0660;
    Sem sem(1, "mode", &o);
    struct stat st;
    ASSERT_EQ(stat(SegmentPath(sem.name()).c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0660u);
    Sem dflt(1, "mode-default");
    ASSERT_EQ(stat(SegmentPath(dflt.name()).c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u);
    umask(old);
}
#endif
