// SPDX-License-Identifier: MIT
// A name's counters (whsem_info's 1.1 fields, whsem_wait_histogram,
// whsem_waiters_history) kept by every process that uses the name:
// acquisitions that succeed, time out, are canceled and wait, blocking and
// asynchronous, here and in another process, and tickets that come back
// from a process killed holding them.
#include "util.h"

#include <chrono>
#include <cstddef>
#include <cstring>
#include <numeric>
#include <thread>
#include <vector>

using namespace whtest;

namespace {

// An "ask, then fill" list of sem's: fn is whsem_wait_histogram or
// whsem_waiters_history.
template <typename T, typename F> std::vector<T> AskThenFill(F fn, whsem_sem sem)
{
    size_t n = 0;
    if (fn(sem, nullptr, 0, &n) != WHSEM_OK) ADD_FAILURE() << "ask: " << whsem_last_error();
    std::vector<T> v(n);
    if (n && fn(sem, v.data(), v.size(), &n) != WHSEM_OK)
        ADD_FAILURE() << "fill: " << whsem_last_error();
    return v;
}

std::vector<uint64_t> Histogram(whsem_sem sem) { return AskThenFill<uint64_t>(whsem_wait_histogram, sem); }

std::vector<uint32_t> History(whsem_sem sem) { return AskThenFill<uint32_t>(whsem_waiters_history, sem); }

// Bucket i of the histogram (see WHSEM_WAIT_BUCKETS) holds waits from
// 2^(9+i) ns: the bucket a wait of at least ns falls in, at the least.
unsigned BucketAtLeast(uint64_t ns)
{
    unsigned i = 0;
    while (i + 1 < WHSEM_WAIT_BUCKETS && (1ull << (10 + i)) <= ns) i++;
    return i;
}

// Takes a ticket, holds it for ms and gives it back.
void HoldFor(whsem_sem sem, int ms)
{
    whsem_ticket t;
    WH_OK(whsem_acquire(sem, 0, 0, &t));
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    WH_OK(whsem_release(t));
}

// Waits until n acquisitions of sem wait.
bool WaitersAre(whsem_sem sem, uint32_t n)
{
    return Eventually([&] { return Info(sem).waiters == n; });
}

} // namespace

TEST(Counters, EveryWayAnAcquisitionEndsIsCountedAcrossProcesses)
{
    whsem_open_options o = CheckingEvery(50);
    Sem sem(1, "counters", &o);
    int64_t before_ms = (int64_t)std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    whsem_info i0 = Info(sem.get());
    EXPECT_EQ(i0.acquisitions, 0u);
    EXPECT_EQ(i0.releases, 0u);
    EXPECT_EQ(i0.waits, 0u);
    // Within a minute of now (the coarse clocks of two processes).
    EXPECT_LE(std::llabs(i0.created_unix_ms - before_ms), 60000) << i0.created_unix_ms;

    // A ticket held here for 200 ms: its hold time, by a coarse clock
    // (a tick at most short).
    HoldFor(sem.get(), 200);
    whsem_info i1 = Info(sem.get());
    EXPECT_EQ(i1.acquisitions, 1u);
    EXPECT_EQ(i1.releases, 1u);
    EXPECT_GE(i1.hold_ns, 150000000u);

    // Another process holds the only ticket: a try here finds none, and a
    // try there too; neither is a timeout (they did not wait).
    whsem_ticket t;
    Child holder({"hold", sem.name(), "1", "1"});
    ASSERT_TRUE(Eventually([&] { return Info(sem.get()).free_count == 0; }));
    WH_EXPECT(WHSEM_TIMEOUT, whsem_acquire(sem.get(), 0, 0, &t));
    {
        Child trier({"try", sem.name(), "1"});
        EXPECT_EQ(trier.Reap(), 0);
    }
    // A wait that times out, and one that is canceled while it waits.
    WH_EXPECT(WHSEM_TIMEOUT, whsem_acquire(sem.get(), 50, 0, &t));
    whsem_cancel c;
    WH_OK(whsem_cancel_new(&c));
    std::thread canceler([&] {
        if (WaitersAre(sem.get(), 1)) whsem_cancel_trigger(c);
    });
    WH_EXPECT(WHSEM_CANCELED, whsem_acquire(sem.get(), WHSEM_INFINITE, c, &t));
    canceler.join();
    // Canceled before it began: an acquisition all the same, that did not wait.
    WH_EXPECT(WHSEM_CANCELED, whsem_acquire(sem.get(), WHSEM_INFINITE, c, &t));
    WH_OK(whsem_cancel_free(c));
    // An asynchronous wait that the holder's death ends with its ticket.
    whsem_op op;
    WH_OK(whsem_acquire_async(sem.get(), WHSEM_INFINITE, 0, nullptr, nullptr, &op));
    ASSERT_TRUE(WaitersAre(sem.get(), 1));
    EXPECT_EQ(holder.Kill(), kKilled);
    WH_OK(whsem_op_wait(op, WHSEM_INFINITE));
    WH_OK(whsem_op_take_ticket(op, &t));
    WH_OK(whsem_op_free(op));
    // An asynchronous wait that times out, and one canceled.
    WH_OK(whsem_acquire_async(sem.get(), 50, 0, nullptr, nullptr, &op));
    WH_EXPECT(WHSEM_TIMEOUT, whsem_op_wait(op, WHSEM_INFINITE));
    WH_OK(whsem_op_free(op));
    WH_OK(whsem_acquire_async(sem.get(), WHSEM_INFINITE, 0, nullptr, nullptr, &op));
    ASSERT_TRUE(WaitersAre(sem.get(), 1));
    WH_OK(whsem_op_cancel(op));
    WH_EXPECT(WHSEM_CANCELED, whsem_op_wait(op, WHSEM_INFINITE));
    WH_OK(whsem_op_free(op));
    WH_OK(whsem_release(t));

    whsem_info i = Info(sem.get());
    // Here, the holder, the asynchronous wait.
    EXPECT_EQ(i.acquisitions, 3u);
    // Here, the holder's (reclaimed), the asynchronous wait's.
    EXPECT_EQ(i.releases, 3u);
    EXPECT_EQ(i.recoveries, 1u);
    // The timed wait and the asynchronous one: not the tries.
    EXPECT_EQ(i.timeouts, 2u);
    // The wait, the acquisition canceled before it began, the asynchronous one.
    EXPECT_EQ(i.cancellations, 3u);
    // The blocking waits (timed out, canceled), the asynchronous ones
    // (the holder's ticket, timed out, canceled); not the tries.
    EXPECT_EQ(i.waits, 5u);
    // Both timed waits waited their 50 ms at least.
    EXPECT_GE(i.wait_ns, 100000000u);
    EXPECT_GE(i.hold_ns, i1.hold_ns);
    EXPECT_EQ(i.created_unix_ms, i0.created_unix_ms);

    std::vector<uint64_t> h = Histogram(sem.get());
    ASSERT_EQ(h.size(), (size_t)WHSEM_WAIT_BUCKETS);
    EXPECT_EQ(std::accumulate(h.begin(), h.end(), uint64_t{0}), i.waits);
    uint64_t long_ones = 0;
    for (size_t b = BucketAtLeast(50000000); b < h.size(); b++) long_ones += h[b];
    EXPECT_GE(long_ones, 2u) << "the two 50 ms waits";

    // Every process sees the same counters: one more opens the name.
    whsem_sem other = 0;
    WH_OK(whtest_open_existing(sem.c_name(), nullptr, &other));
    whsem_info io = Info(other);
    EXPECT_EQ(io.acquisitions, i.acquisitions);
    EXPECT_EQ(io.timeouts, i.timeouts);
    EXPECT_EQ(io.waits, i.waits);
    WH_OK(whsem_close(other));
}

TEST(Counters, TheWaitersHistoryKeepsTheMostSeenEachSecond)
{
    Sem sem(1, "history");
    std::vector<uint32_t> h = History(sem.get());
    ASSERT_GE(h.size(), 120u);
    EXPECT_EQ(*std::max_element(h.begin(), h.end()), 0u) << "nobody has waited yet";

    // Two asynchronous waits at once, while another process holds the ticket.
    Child holder({"hold", sem.name(), "1", "1"});
    ASSERT_TRUE(Eventually([&] { return Info(sem.get()).free_count == 0; }));
    whsem_op a, b;
    WH_OK(whsem_acquire_async(sem.get(), WHSEM_INFINITE, 0, nullptr, nullptr, &a));
    WH_OK(whsem_acquire_async(sem.get(), WHSEM_INFINITE, 0, nullptr, nullptr, &b));
    ASSERT_TRUE(WaitersAre(sem.get(), 2));
    WH_OK(whsem_op_cancel(b));
    WH_EXPECT(WHSEM_CANCELED, whsem_op_wait(b, WHSEM_INFINITE));
    ASSERT_TRUE(WaitersAre(sem.get(), 1));
    // One waits on through seconds in which nothing changes: they have it.
    auto since = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));
    h = History(sem.get());
    ASSERT_GE(h.size(), 120u);
    EXPECT_GE(h[h.size() - 1], 1u);
    EXPECT_GE(h[h.size() - 2], 1u);
    // The two waited at once within the seconds kept (the test has not
    // taken as long as those).
    if (SecondsSince(since) < 100) EXPECT_GE(*std::max_element(h.begin(), h.end()), 2u);
    // Ask, then fill: the most recent seconds.
    std::vector<uint32_t> last(3, 77);
    size_t n = 0;
    WH_OK(whsem_waiters_history(sem.get(), last.data(), last.size(), &n));
    EXPECT_EQ(n, h.size());
    EXPECT_GE(last[2], 1u);
    WH_EXPECT(WHSEM_E_INVALID_ARGUMENT, whsem_waiters_history(sem.get(), nullptr, 3, &n));
    WH_EXPECT(WHSEM_E_INVALID_ARGUMENT, whsem_waiters_history(sem.get(), last.data(), 3, nullptr));

    EXPECT_EQ(holder.Kill(), kKilled);
    WH_OK(whsem_op_cancel(a));
    EXPECT_NE(whsem_op_wait(a, WHSEM_INFINITE), WHSEM_PENDING);
    whsem_ticket t;
    if (whsem_op_take_ticket(a, &t) == WHSEM_OK) WH_OK(whsem_release(t));
    WH_OK(whsem_op_free(a));
    WH_OK(whsem_op_free(b));
}

TEST(Counters, HoldsAreTimedAgainOnceTheyComeSlowerThanTheClockTicks)
{
    Sem sem(1, "holds");
    auto t0 = std::chrono::steady_clock::now();
    // Holds faster than the coarse clock tells apart: only a sample of
    // them is timed (src/DESIGN.md, "The counters, and what they cost").
    whsem_ticket t;
    for (int i = 0; i < 20000; i++) {
        WH_OK(whsem_acquire(sem.get(), 0, 0, &t));
        WH_OK(whsem_release(t));
    }
    uint64_t fast = Info(sem.get()).hold_ns;
    // Then 70 holds of 30 ms: at most 63 go by before the sample sees that
    // they slowed down, and the rest are each timed, a tick short at most.
    for (int i = 0; i < 70; i++) HoldFor(sem.get(), 30);
    whsem_info i = Info(sem.get());
    EXPECT_EQ(i.acquisitions, 20070u);
    EXPECT_EQ(i.releases, 20070u);
    EXPECT_GE(i.hold_ns - fast, 7u * 14000000u);
    // A timed hold stands for 64 at most, and the clock's ticks that one
    // thread's holds span add up to the time it took, and a tick (a
    // Windows tick is 15.6 ms): never more than 64 times that.
    EXPECT_LE(i.hold_ns, 64u * (uint64_t)((SecondsSince(t0) + 0.02) * 1e9));
}

TEST(Counters, TheHistogramIsAskThenFill)
{
    Sem sem(1, "histogram");
    size_t n = 99;
    WH_OK(whsem_wait_histogram(sem.get(), nullptr, 0, &n));
    EXPECT_EQ(n, (size_t)WHSEM_WAIT_BUCKETS);
    std::vector<uint64_t> few(4, 77);
    WH_OK(whsem_wait_histogram(sem.get(), few.data(), few.size(), &n));
    EXPECT_EQ(n, (size_t)WHSEM_WAIT_BUCKETS);
    EXPECT_EQ(few, std::vector<uint64_t>(4, 0));
    WH_EXPECT(WHSEM_E_INVALID_ARGUMENT, whsem_wait_histogram(sem.get(), nullptr, 4, &n));
    WH_EXPECT(WHSEM_E_INVALID_ARGUMENT, whsem_wait_histogram(sem.get(), few.data(), 4, nullptr));
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_wait_histogram(0, few.data(), 4, &n));
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_waiters_history(0, nullptr, 0, &n));
}

TEST(Counters, ACallerBuiltAgainst10GetsThe10FieldsOnly)
{
    Sem sem(2, "info10");
    whsem_ticket t;
    WH_OK(whsem_acquire(sem.get(), 0, 0, &t));
    // The struct as 1.0 had it, and past its end what must stay untouched.
    unsigned char buf[sizeof(whsem_info)];
    memset(buf, 0xab, sizeof buf);
    whsem_info *info = reinterpret_cast<whsem_info *>(buf);
    info->struct_size = (uint32_t)offsetof(whsem_info, acquisitions);
    size_t n = 0;
    WH_OK(whsem_query(sem.get(), info, nullptr, 0, &n));
    EXPECT_EQ(info->max_count, 2);
    EXPECT_EQ(info->free_count, 1);
    for (size_t k = offsetof(whsem_info, acquisitions); k < sizeof buf; k++)
        ASSERT_EQ(buf[k], 0xab) << "byte " << k << " past a 1.0 whsem_info";
    // The full size gets the counters.
    whsem_info full = Info(sem.get());
    EXPECT_EQ(full.acquisitions, 1u);
    EXPECT_EQ(full.releases, 0u);
    WH_OK(whsem_release(t));
}
