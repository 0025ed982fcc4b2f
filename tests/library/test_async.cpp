// SPDX-License-Identifier: MIT
// Asynchronous acquisition: poll, wait, callbacks, completion queues with a
// real event loop, every error path, re-entrancy, races with grants, scale.
#include "util.h"

#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <vector>

using namespace whtest;

namespace {

// Records callbacks: how many per operation, and their statuses.
struct Recorder {
    std::mutex mu;
    std::map<whsem_op, int> calls;
    std::map<whsem_op, whsem_status> status;
    std::vector<whsem_op> order; // in the order of the callbacks
    std::atomic<int> total{0};
    static void WHSEM_CALL Cb(whsem_op op, whsem_status st, void *ud)
    {
        auto *r = static_cast<Recorder *>(ud);
        {
            std::lock_guard<std::mutex> g(r->mu);
            r->calls[op]++;
            r->status[op] = st;
            r->order.push_back(op);
        }
        r->total++;
    }
    // The n-th operation called back, once it has been.
    whsem_op Nth(size_t n)
    {
        std::lock_guard<std::mutex> g(mu);
        return n < order.size() ? order[n] : 0;
    }
};

} // namespace

TEST(Async, CompletesImmediatelyWhenATicketIsFreeButCallsBackLater)
{
    Sem sem(1);
    Recorder rec;
    whsem_op op = 0;
    WH_OK(whsem_acquire_async(sem.get(), WHSEM_INFINITE, 0, Recorder::Cb, &rec, &op));
    ASSERT_NE(op, 0u);
    EXPECT_EQ(StatusWithoutWaiting(op), WHSEM_OK); // final on shared memory before the call returned...
    ASSERT_TRUE(Eventually([&] { return rec.total == 1; })); // ...called back on another thread
    whsem_ticket t, none;
    WH_OK(whsem_op_take_ticket(op, &t));
    WH_EXPECT(WHSEM_TIMEOUT, whsem_acquire(sem.get(), 0, 0, &none)); // it holds the only ticket
    WH_OK(whsem_release(t));
    WH_OK(whsem_op_free(op));
    EXPECT_EQ(rec.calls[op], 1);
}

TEST(Async, CallbackRunsOnALibraryThreadAfterTheStatusIsVisible)
{
    Sem sem(1);
    whsem_ticket held;
    WH_OK(whsem_acquire(sem.get(), 0, 0, &held));
    struct Seen {
        std::atomic<int> polled{-100};
        std::atomic<bool> other_thread{false};
        std::thread::id caller;
    } seen;
    seen.caller = std::this_thread::get_id();
    auto cb = [](whsem_op op, whsem_status st, void *ud) {
        auto *s = static_cast<Seen *>(ud);
        s->other_thread = std::this_thread::get_id() != s->caller;
        s->polled = whsem_op_poll(op) == st ? st : -99;
    };
    whsem_op op;
    WH_OK(whsem_acquire_async(sem.get(), WHSEM_INFINITE, 0, cb, &seen, &op));
    EXPECT_EQ(whsem_op_poll(op), WHSEM_PENDING);
    WH_OK(whsem_release(held));
    ASSERT_TRUE(Eventually([&] { return seen.polled != -100; }));
    EXPECT_EQ(seen.polled.load(), WHSEM_OK);
    EXPECT_TRUE(seen.other_thread.load());
    WH_OK(whsem_op_free(op)); // frees the untaken ticket
    EXPECT_EQ(InfoWithFree(sem.get(), 1).free_count, 1);
}

TEST(Async, WaitPollAndTimeouts)
{
    Sem sem(1);
    whsem_ticket held;
    WH_OK(whsem_acquire(sem.get(), 0, 0, &held));
    whsem_op op;
    WH_OK(whsem_acquire_async(sem.get(), 100, 0, nullptr, nullptr, &op));
    EXPECT_EQ(whsem_op_wait(op, 0), WHSEM_PENDING);
    EXPECT_EQ(whsem_op_wait(op, 1), WHSEM_PENDING);
    EXPECT_EQ(whsem_op_wait(op, WHSEM_INFINITE), WHSEM_TIMEOUT);
    EXPECT_EQ(whsem_op_poll(op), WHSEM_TIMEOUT);
    whsem_ticket t = 0;
    EXPECT_EQ(whsem_op_take_ticket(op, &t), WHSEM_TIMEOUT);
    EXPECT_EQ(t, 0u);
    WH_OK(whsem_op_free(op));
    // Try-once: final at once, or after a round trip (StatusWithoutWaiting).
    WH_OK(whsem_acquire_async(sem.get(), 0, 0, nullptr, nullptr, &op));
    EXPECT_EQ(StatusWithoutWaiting(op), WHSEM_TIMEOUT);
    WH_OK(whsem_op_free(op));
    EXPECT_EQ(Info(sem.get()).waiters, 0u);
    WH_OK(whsem_release(held));
}

TEST(Async, ErrorPaths)
{
    Sem sem(1);
    whsem_op op = 0;
    whsem_ticket t;
    // Bad arguments create no operation.
    WH_EXPECT(WHSEM_E_INVALID_ARGUMENT, whsem_acquire_async(sem.get(), 0, 0, nullptr, nullptr, nullptr));
    WH_EXPECT(WHSEM_E_INVALID_ARGUMENT, whsem_acquire_async(sem.get(), -2, 0, nullptr, nullptr, &op));
    WH_EXPECT(WHSEM_E_INVALID_ARGUMENT,
              whsem_acquire_async(sem.get(), (int64_t)INT32_MAX + 1, 0, nullptr, nullptr, &op));
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_acquire_async(0, 0, 0, nullptr, nullptr, &op));
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_acquire_async(sem.get(), 0, sem.get(), nullptr, nullptr, &op));
    EXPECT_EQ(op, 0u);
    // Zero, garbage and wrong-kind operation handles.
    for (uint64_t bad : std::initializer_list<uint64_t>{0, 3, 0xffffffffffffffffull, sem.get()}) {
        WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_op_poll(bad));
        WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_op_wait(bad, 0));
        WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_op_take_ticket(bad, &t));
        WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_op_cancel(bad));
        WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_op_free(bad));
    }
    WH_OK(whsem_acquire_async(sem.get(), 0, 0, nullptr, nullptr, &op));
    WH_EXPECT(WHSEM_E_INVALID_ARGUMENT, whsem_op_take_ticket(op, nullptr));
    WH_EXPECT(WHSEM_E_INVALID_ARGUMENT, whsem_op_wait(op, -7));
    EXPECT_EQ(StatusWithoutWaiting(op), WHSEM_OK);
    WH_OK(whsem_op_take_ticket(op, &t));
    whsem_ticket again;
    WH_EXPECT(WHSEM_E_INVALID_ARGUMENT, whsem_op_take_ticket(op, &again)); // twice
    EXPECT_NE(strstr(whsem_last_error(), "already taken"), nullptr);
    WH_OK(whsem_op_cancel(op)); // final: harmless
    EXPECT_EQ(whsem_op_poll(op), WHSEM_OK);
    WH_OK(whsem_op_free(op));
    // Stale after free.
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_op_free(op));
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_op_poll(op));
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_op_wait(op, 0));
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_op_take_ticket(op, &again));
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_op_cancel(op));
    WH_OK(whsem_release(t)); // the taken ticket outlives its operation
    // Queue errors.
    whsem_queue q = 0;
    int32_t fd;
    uint64_t tag;
    WH_EXPECT(WHSEM_E_INVALID_ARGUMENT, whsem_queue_new(nullptr));
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_queue_fd(0, &fd));
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_queue_pop(sem.get(), &op, &tag));
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_acquire_queued(sem.get(), 0, 0, 0, 1, &op));
    WH_OK(whsem_queue_new(&q));
    WH_EXPECT(WHSEM_E_INVALID_ARGUMENT, whsem_queue_fd(q, nullptr));
    WH_EXPECT(WHSEM_E_INVALID_ARGUMENT, whsem_queue_pop(q, nullptr, &tag));
    EXPECT_EQ(whsem_queue_pop(q, &op, &tag), WHSEM_PENDING);
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_acquire_queued(0, 0, 0, q, 1, &op));
    WH_OK(whsem_queue_free(q));
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_queue_free(q));
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_queue_pop(q, &op, &tag));
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_acquire_queued(sem.get(), 0, 0, q, 1, &op));
}

TEST(Async, TriggeredSourceCancelsWithoutAcquiring)
{
    Sem sem(1);
    whsem_cancel c;
    WH_OK(whsem_cancel_new(&c));
    WH_OK(whsem_cancel_trigger(c));
    Recorder rec;
    whsem_op op;
    WH_OK(whsem_acquire_async(sem.get(), WHSEM_INFINITE, c, Recorder::Cb, &rec, &op));
    EXPECT_EQ(whsem_op_wait(op, WHSEM_INFINITE), WHSEM_CANCELED);
    ASSERT_TRUE(Eventually([&] { return rec.total == 1; }));
    EXPECT_EQ(rec.status[op], WHSEM_CANCELED);
    EXPECT_EQ(Info(sem.get()).free_count, 1);
    WH_OK(whsem_op_free(op));
    WH_OK(whsem_cancel_free(c));
}

TEST(Async, CancelSourceOpCancelAndCloseEndPendingOperations)
{
    Sem sem(1);
    whsem_sem second;
    WH_OK(whtest_open(sem.c_name(), 1, nullptr, &second));
    whsem_ticket held;
    WH_OK(whsem_acquire(sem.get(), 0, 0, &held));
    whsem_cancel c;
    WH_OK(whsem_cancel_new(&c));
    Recorder rec;
    whsem_op by_source, by_cancel, by_close, survivor;
    WH_OK(whsem_acquire_async(sem.get(), WHSEM_INFINITE, c, Recorder::Cb, &rec, &by_source));
    WH_OK(whsem_acquire_async(sem.get(), WHSEM_INFINITE, 0, Recorder::Cb, &rec, &by_cancel));
    WH_OK(whsem_acquire_async(second, WHSEM_INFINITE, 0, Recorder::Cb, &rec, &by_close));
    WH_OK(whsem_acquire_async(sem.get(), WHSEM_INFINITE, 0, Recorder::Cb, &rec, &survivor));
    ASSERT_TRUE(Eventually([&] { return Info(sem.get()).waiters == 4; }));
    WH_OK(whsem_cancel_trigger(c));
    WH_OK(whsem_op_cancel(by_cancel));
    WH_OK(whsem_op_cancel(by_cancel)); // idempotent
    WH_OK(whsem_close(second));
    EXPECT_EQ(whsem_op_wait(by_source, WHSEM_INFINITE), WHSEM_CANCELED);
    EXPECT_EQ(whsem_op_wait(by_cancel, WHSEM_INFINITE), WHSEM_CANCELED);
    EXPECT_EQ(whsem_op_wait(by_close, WHSEM_INFINITE), WHSEM_CANCELED);
    EXPECT_EQ(whsem_op_poll(survivor), WHSEM_PENDING);
    WH_OK(whsem_release(held));
    EXPECT_EQ(whsem_op_wait(survivor, WHSEM_INFINITE), WHSEM_OK);
    ASSERT_TRUE(Eventually([&] { return rec.total == 4; }));
    for (whsem_op o : {by_source, by_cancel, by_close, survivor}) {
        EXPECT_EQ(rec.calls[o], 1);
        WH_OK(whsem_op_free(o));
    }
    EXPECT_EQ(InfoWithFree(sem.get(), 1).free_count, 1);
    WH_OK(whsem_cancel_free(c));
}

// Since 1.1: an operation keeps the message of how it ended, which the
// thread that ended it (the dispatcher here) had, and poll, wait and
// take_ticket make it the caller's whsem_last_error(), on any thread and
// whatever that thread's previous message was.
TEST(Async, AnEndedOperationHandsOnItsMessage)
{
    Sem sem(1);
    whsem_sem second;
    WH_OK(whtest_open(sem.c_name(), 1, nullptr, &second));
    whsem_ticket held;
    WH_OK(whsem_acquire(sem.get(), 0, 0, &held));
    auto unrelated = [] {
        WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_release(0));
        ASSERT_STRNE(whsem_last_error(), "");
    };
    struct Seen {
        std::atomic<bool> done{false};
        whsem_status polled = WHSEM_OK;
        std::string message;
    } seen;
    whsem_callback cb = [](whsem_op op, whsem_status, void *ud) {
        auto *s = static_cast<Seen *>(ud);
        whsem_release(0);
        s->polled = whsem_op_poll(op);
        s->message = whsem_last_error();
        s->done = true;
    };
    whsem_op closed, canceled, timed_out;
    WH_OK(whsem_acquire_async(second, WHSEM_INFINITE, 0, cb, &seen, &closed));
    WH_OK(whsem_acquire_async(sem.get(), WHSEM_INFINITE, 0, nullptr, nullptr, &canceled));
    WH_OK(whsem_acquire_async(sem.get(), 1, 0, nullptr, nullptr, &timed_out));
    WH_OK(whsem_close(second));

    const std::string kClosed = "the semaphore handle was closed while waiting";
    unrelated();
    EXPECT_EQ(whsem_op_wait(closed, WHSEM_INFINITE), WHSEM_CANCELED);
    EXPECT_EQ(whsem_last_error(), kClosed);
    unrelated();
    EXPECT_EQ(whsem_op_poll(closed), WHSEM_CANCELED);
    EXPECT_EQ(whsem_last_error(), kClosed);
    unrelated();
    whsem_ticket t = 1;
    EXPECT_EQ(whsem_op_take_ticket(closed, &t), WHSEM_CANCELED);
    EXPECT_EQ(whsem_last_error(), kClosed);
    EXPECT_EQ(t, 0u);
    std::string elsewhere;
    std::thread([&] {
        whsem_op_poll(closed);
        elsewhere = whsem_last_error();
    }).join();
    EXPECT_EQ(elsewhere, kClosed);
    ASSERT_TRUE(Eventually([&] { return seen.done.load(); }));
    EXPECT_EQ(seen.polled, WHSEM_CANCELED);
    EXPECT_EQ(seen.message, kClosed); // inside the callback too

    // Endings the status explains by itself leave "", not an older message.
    WH_OK(whsem_op_cancel(canceled));
    unrelated();
    EXPECT_EQ(whsem_op_wait(canceled, WHSEM_INFINITE), WHSEM_CANCELED);
    EXPECT_STREQ(whsem_last_error(), "");
    unrelated();
    EXPECT_EQ(whsem_op_wait(timed_out, WHSEM_INFINITE), WHSEM_TIMEOUT);
    EXPECT_STREQ(whsem_last_error(), "");
    unrelated();
    EXPECT_EQ(whsem_op_take_ticket(timed_out, &t), WHSEM_TIMEOUT);
    EXPECT_STREQ(whsem_last_error(), "");
    // Still pending is not an ending: the thread's message stays.
    whsem_op pending;
    WH_OK(whsem_acquire_async(sem.get(), WHSEM_INFINITE, 0, nullptr, nullptr, &pending));
    unrelated();
    std::string before = whsem_last_error();
    EXPECT_EQ(whsem_op_poll(pending), WHSEM_PENDING);
    EXPECT_EQ(whsem_op_wait(pending, 1), WHSEM_PENDING);
    EXPECT_EQ(whsem_op_take_ticket(pending, &t), WHSEM_PENDING);
    EXPECT_EQ(whsem_last_error(), before);

    // A recycled operation object keeps nothing of its former life.
    for (whsem_op o : {canceled, timed_out, pending, closed}) WH_OK(whsem_op_free(o));
    whsem_op fresh;
    WH_OK(whsem_acquire_async(sem.get(), 0, 0, nullptr, nullptr, &fresh)); // likely closed's
    unrelated();
    EXPECT_EQ(whsem_op_wait(fresh, WHSEM_INFINITE), WHSEM_TIMEOUT);
    EXPECT_STREQ(whsem_last_error(), "");
    WH_OK(whsem_op_free(fresh));
    WH_OK(whsem_release(held));
}

TEST(Async, FreeingAPendingOperationCancelsItAndStillCallsBackOnce)
{
    Sem sem(1);
    whsem_ticket held;
    WH_OK(whsem_acquire(sem.get(), 0, 0, &held));
    Recorder rec;
    whsem_op op;
    WH_OK(whsem_acquire_async(sem.get(), WHSEM_INFINITE, 0, Recorder::Cb, &rec, &op));
    WH_OK(whsem_op_free(op));
    ASSERT_TRUE(Eventually([&] { return rec.total == 1; }));
    EXPECT_EQ(rec.calls[op], 1); // the callback names the (now stale) handle
    EXPECT_EQ(rec.status[op], WHSEM_CANCELED);
    EXPECT_TRUE(Eventually([&] { return Info(sem.get()).waiters == 0; }));
    WH_OK(whsem_release(held));
    EXPECT_EQ(InfoWithFree(sem.get(), 1).free_count, 1);
}

// A callback may call back into the library: release, free its own
// operation, start another acquisition (whose callback continues the chain).
TEST(Async, CallbacksMayReenterTheLibrary)
{
    Sem sem(1);
    struct Chain {
        whsem_sem sem;
        std::atomic<int> remaining{50};
        std::atomic<int> errors{0};
        std::atomic<bool> done{false};
    } chain;
    chain.sem = sem.get();
    static whsem_callback step = nullptr;
    step = [](whsem_op op, whsem_status st, void *ud) {
        auto *c = static_cast<Chain *>(ud);
        whsem_ticket t;
        if (st != WHSEM_OK || whsem_op_take_ticket(op, &t) != WHSEM_OK) c->errors++;
        if (whsem_op_free(op) != WHSEM_OK) c->errors++;
        if (whsem_release(t) != WHSEM_OK) c->errors++;
        if (--c->remaining == 0) {
            c->done = true;
            return;
        }
        // A blocking call inside a callback is allowed too.
        whsem_ticket b;
        if (whsem_acquire(c->sem, 5000, 0, &b) != WHSEM_OK || whsem_release(b) != WHSEM_OK) c->errors++;
        whsem_op next;
        if (whsem_acquire_async(c->sem, WHSEM_INFINITE, 0, step, c, &next) != WHSEM_OK) c->errors++;
    };
    whsem_op first;
    WH_OK(whsem_acquire_async(sem.get(), WHSEM_INFINITE, 0, step, &chain, &first));
    ASSERT_TRUE(Eventually([&] { return chain.done.load(); }));
    EXPECT_EQ(chain.errors.load(), 0);
    EXPECT_EQ(InfoWithFree(sem.get(), 1).free_count, 1);
}

TEST(QueueHandle, ErrorPaths)
{
    uint64_t h = 0;
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_queue_handle(0, &h));
    whsem_queue q;
    WH_OK(whsem_queue_new(&q));
    WH_EXPECT(WHSEM_E_INVALID_ARGUMENT, whsem_queue_handle(q, nullptr));
    WH_OK(whsem_queue_handle(q, &h));
    EXPECT_NE(h, 0u);
    WH_OK(whsem_queue_free(q));
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_queue_handle(q, &h));
}

TEST(Async, CompletionQueueWithARealEventLoop)
{
    Sem sem(2);
    whsem_queue q;
    WH_OK(whsem_queue_new(&q));
    QueueWaiter loop(q);
    EXPECT_FALSE(loop.Ready(0)); // nothing posted: not ready

    const int kOps = 200;
    std::map<uint64_t, whsem_op> by_tag;
    for (int i = 0; i < kOps; i++) {
        whsem_op op;
        WH_OK(whsem_acquire_queued(sem.get(), WHSEM_INFINITE, 0, q, 1000 + i, &op));
        by_tag[1000 + i] = op;
    }
    // The loop: wait until the queue is ready, pop everything, release each
    // ticket (which lets the next two operations complete).
    int completed = 0, loops = 0, max_inside = 0, inside = 0;
    std::set<uint64_t> seen;
    while (completed < kOps && loops < 100000) {
        loops++;
        ASSERT_TRUE(loop.Ready(30000)) << "no completion within 30 s";
        whsem_op op;
        uint64_t tag;
        std::vector<whsem_ticket> got;
        while (whsem_queue_pop(q, &op, &tag) == WHSEM_OK) {
            ASSERT_EQ(by_tag[tag], op);
            ASSERT_TRUE(seen.insert(tag).second) << "tag " << tag << " posted twice";
            ASSERT_EQ(whsem_op_poll(op), WHSEM_OK);
            whsem_ticket t;
            WH_OK(whsem_op_take_ticket(op, &t));
            WH_OK(whsem_op_free(op));
            got.push_back(t);
            completed++;
        }
        inside += (int)got.size();
        max_inside = std::max(max_inside, inside);
        for (auto t : got) WH_OK(whsem_release(t));
        inside -= (int)got.size();
    }
    EXPECT_EQ(completed, kOps);
    EXPECT_LE(max_inside, 2);
    EXPECT_FALSE(loop.Ready(0)); // drained: not ready again
    WH_OK(whsem_queue_free(q));
    EXPECT_EQ(InfoWithFree(sem.get(), 2).free_count, 2);
}

TEST(Async, FreeingAQueueEndsItsPendingOperations)
{
    Sem sem(1);
    whsem_ticket held;
    WH_OK(whsem_acquire(sem.get(), 0, 0, &held));
    whsem_queue q;
    WH_OK(whsem_queue_new(&q));
    whsem_op op;
    WH_OK(whsem_acquire_queued(sem.get(), WHSEM_INFINITE, 0, q, 9, &op));
    WH_OK(whsem_queue_free(q));
    EXPECT_EQ(whsem_op_wait(op, WHSEM_INFINITE), WHSEM_CANCELED);
    WH_OK(whsem_op_free(op));
    WH_OK(whsem_release(held));
    EXPECT_EQ(InfoWithFree(sem.get(), 1).free_count, 1);
}

// DistributedLock issue #120: cancellation racing with a grant must never
// lose the ticket. Each round holds the only ticket of a semaphore, starts
// an acquisition (certainly pending), then releases the ticket - a grant to
// that acquisition - while ending it in one of five ways. Afterwards every
// ticket must still be acquirable.
TEST(Async, EndingsRacingWithGrantsNeverLoseATicket)
{
    const int kRounds = kWindows ? 600 : Rounds(2500, 250); // fewer on Windows: Wine is slower
    std::atomic<int> ok{0}, ended{0}, waited{0}, failures{0};
    std::mutex first_mu;
    std::string first_failure;
    auto failed = [&](const std::string &what, whsem_status st) {
        std::lock_guard<std::mutex> g(first_mu);
        if (failures++ == 0) first_failure = what + ": " + whsem_status_name(st) + ": " + whsem_last_error();
    };
    std::vector<std::unique_ptr<Sem>> sems;
    for (int i = 0; i < 4; i++) sems.push_back(std::make_unique<Sem>(1, "race"));
    auto racer = [&](int id) {
        std::mt19937 rng(id + 1);
        Sem &sem = *sems[id];
        whsem_sem second;
        whsem_status st = whtest_open(sem.c_name(), 1, nullptr, &second);
        if (st != WHSEM_OK) return failed("open", st);
        whsem_cancel c;
        whsem_cancel_new(&c);
        for (int i = 0; i < kRounds; i++) {
            whsem_ticket held;
            if ((st = whsem_acquire(sem.get(), 0, 0, &held)) != WHSEM_OK) return failed("hold", st);
            int how = (int)(rng() % 5);
            whsem_op op;
            whsem_sem via = how == 3 ? second : sem.get();
            if ((st = whsem_acquire_async(via, how == 1 ? 1 : WHSEM_INFINITE, how == 2 ? c : 0, nullptr,
                                          nullptr, &op)) != WHSEM_OK)
                return failed("start", st);
            // Pending, unless a 1 ms timeout already passed (slow builds).
            st = whsem_op_poll(op);
            if (st != WHSEM_PENDING && !(how == 1 && st == WHSEM_TIMEOUT)) return failed("not pending", st);
            whsem_release(held); // grants the ticket to `op`...
            switch (how) {       // ...while this ends it
            case 0: whsem_op_cancel(op); break;
            case 1: break; // its 1 ms timeout
            case 2: whsem_cancel_trigger(c); break;
            case 3: whsem_close(second); break;
            case 4: break; // freed below, pending or not
            }
            if (how != 4) {
                waited++;
                st = whsem_op_wait(op, 20000);
                whsem_ticket t;
                if (st == WHSEM_OK) {
                    ok++;
                    if ((st = whsem_op_take_ticket(op, &t)) != WHSEM_OK) failed("take", st);
                    else if ((st = whsem_release(t)) != WHSEM_OK) failed("release taken", st);
                } else if (st == WHSEM_CANCELED || st == WHSEM_TIMEOUT) {
                    ended++;
                } else {
                    failed("wait (how " + std::to_string(how) + ")", st);
                }
            }
            if ((st = whsem_op_free(op)) != WHSEM_OK) failed("free", st);
            if (how == 2) {
                whsem_cancel_free(c);
                whsem_cancel_new(&c);
            }
            if (how == 3 && (st = whtest_open(sem.c_name(), 1, nullptr, &second)) != WHSEM_OK)
                failed("reopen", st);
            // Whatever happened, the ticket is back: a freed op returned it.
            whsem_ticket again;
            if ((st = whsem_acquire(sem.get(), 20000, 0, &again)) != WHSEM_OK)
                failed("again (how " + std::to_string(how) + ")", st);
            else if ((st = whsem_release(again)) != WHSEM_OK)
                failed("release again", st);
        }
        whsem_cancel_free(c);
        whsem_close(second);
    };
    std::vector<std::thread> th;
    for (int i = 0; i < 4; i++) th.emplace_back(racer, i);
    for (auto &t : th) t.join();
    EXPECT_EQ(failures.load(), 0) << first_failure;
    EXPECT_EQ(ok + ended, waited.load());
    printf("races: %d delivered, %d ended without a ticket\n", ok.load(), ended.load());
    // Both outcomes of the race happen over 4 * kRounds rounds.
    EXPECT_GT(ok.load(), 0);
    EXPECT_GT(ended.load(), 0);
    // An operation that ended while the dispatcher could not have the
    // segment lock at once (a busy machine, Wine's slow mutexes) leaves its
    // want as a debt the dispatcher pays as soon as it has the lock: the
    // ticket comes back then, not necessarily before the last wait returns.
    for (auto &sem : sems) {
        whsem_info info{};
        EXPECT_TRUE(Eventually([&] {
            info = Info(sem->get());
            return info.free_count == 1 && info.waiters == 0;
        })) << "free " << info.free_count << ", waiters " << info.waiters;
    }
}

// The same race across processes: children race their endings against
// releases of each other's tickets.
TEST(Async, EndingsRacingAcrossProcessesNeverLoseATicket)
{
    Sem sem(2);
    const std::string kRounds = std::to_string(kWindows ? 300 : Rounds(1500, 150)); // Wine is slower
    std::vector<std::unique_ptr<Child>> kids;
    for (int p = 0; p < 4; p++)
        kids.push_back(std::make_unique<Child>(
            std::vector<std::string>{"asyncrace", sem.name(), "2", kRounds, std::to_string(p * 77 + 1)}));
    for (auto &k : kids) EXPECT_EQ(k->Reap(), 0);
    whsem_info info = InfoWithFree(sem.get(), 2);
    EXPECT_EQ(info.free_count, 2);
    EXPECT_EQ(info.waiters, 0u);
}

// The dispatcher runs quick callbacks itself (src/async_callbacks.c). One
// that blocks must not hold up anything else for long: another name's
// operation still completes and calls back, and a timeout still ends,
// while it blocks (the bound is generous: the takeover takes 50-100 ms).
TEST(Async, ABlockingCallbackHoldsUpNoOtherOperation)
{
    Sem a(1, "blocker"), b(1, "other"), c(1, "timed");
    // Callbacks through the dispatcher, so that a callback thread exists
    // and stands by for it: each operation's ticket, freed with it, goes
    // to the next.
    {
        Recorder warm;
        whsem_op ops[3];
        whsem_ticket first;
        WH_OK(whsem_acquire(a.get(), 0, 0, &first));
        for (auto &op : ops) WH_OK(whsem_acquire_async(a.get(), WHSEM_INFINITE, 0, Recorder::Cb, &warm, &op));
        WH_OK(whsem_release(first));
        for (int i = 0; i < 3; i++) {
            ASSERT_TRUE(Eventually([&] { return warm.total > i; }));
            WH_OK(whsem_op_free(ops[i]));
        }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    whsem_ticket ha, hb, hc;
    WH_OK(whsem_acquire(a.get(), 0, 0, &ha));
    WH_OK(whsem_acquire(b.get(), 0, 0, &hb));
    WH_OK(whsem_acquire(c.get(), 0, 0, &hc));
    struct Blocker {
        std::atomic<bool> inside{false}, go{false};
    } blocker;
    whsem_callback blocks = [](whsem_op, whsem_status, void *ud) {
        auto *bl = static_cast<Blocker *>(ud);
        bl->inside = true;
        for (int i = 0; i < 3000 && !bl->go; i++) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    };
    whsem_op blocked, other, timed;
    WH_OK(whsem_acquire_async(a.get(), WHSEM_INFINITE, 0, blocks, &blocker, &blocked));
    Recorder rec;
    WH_OK(whsem_acquire_async(b.get(), WHSEM_INFINITE, 0, Recorder::Cb, &rec, &other));
    WH_OK(whsem_release(ha));
    ASSERT_TRUE(Eventually([&] { return blocker.inside.load(); }));
    auto t0 = std::chrono::steady_clock::now();
    WH_OK(whsem_release(hb));
    WH_OK(whsem_acquire_async(c.get(), 100, 0, nullptr, nullptr, &timed));
    EXPECT_TRUE(Eventually([&] { return rec.total == 1; }, 10));
    EXPECT_EQ(whsem_op_wait(timed, 10000), WHSEM_TIMEOUT);
    double took = SecondsSince(t0);
    bool still_blocked = !blocker.go;
    blocker.go = true;
    EXPECT_TRUE(still_blocked);
    EXPECT_LT(took, 10.0) << "the other operations waited for the blocking callback";
    EXPECT_EQ(whsem_op_poll(other), WHSEM_OK);
    WH_OK(whsem_op_free(other)); // gives its ticket back
    WH_OK(whsem_op_free(timed));
    WH_OK(whsem_op_free(blocked));
    WH_OK(whsem_release(hc));
    EXPECT_TRUE(Eventually([&] { return Info(a.get()).free_count == 1 && Info(b.get()).free_count == 1; }));
}

TEST(Async, TenThousandPendingOperationsWithBoundedThreads)
{
    Sem sem(4);
    std::vector<whsem_ticket> held(4);
    for (auto &t : held) WH_OK(whsem_acquire(sem.get(), 0, 0, &t));
    int threads_before = ThreadCount();
    ASSERT_GT(threads_before, 0) << "cannot count this process's threads";
    long rss_before = RssKb();
    // A thousand on PostgreSQL, where every completion is a round trip to
    // the server: what counts is that threads do not grow with them.
    const int kOps = Rounds(10000, 1000);
    Recorder rec;
    std::vector<whsem_op> ops(kOps);
    for (auto &op : ops) WH_OK(whsem_acquire_async(sem.get(), WHSEM_INFINITE, 0, Recorder::Cb, &rec, &op));
    ASSERT_TRUE(Eventually([&] { return Info(sem.get()).waiters == (uint32_t)kOps; }));
    int threads_pending = ThreadCount();
    long rss_pending = RssKb();
    EXPECT_LE(threads_pending - threads_before, 3) << "library threads must not grow with operations";
    RecordProperty("threads_added", threads_pending - threads_before);
    RecordProperty("kb_per_1000_pending", std::to_string((rss_pending - rss_before) * 1000 / kOps));
    printf("%d pending: +%d threads, ~%ld bytes/op\n", kOps, threads_pending - threads_before,
           (rss_pending - rss_before) * 1024 / kOps);
    // Release the four tickets; each completion passes its ticket on.
    for (auto t : held) WH_OK(whsem_release(t));
    for (int done = 0; done < kOps; done++) {
        whsem_op op = 0;
        ASSERT_TRUE(Eventually([&] { return (op = rec.Nth(done)) != 0; }))
            << "stuck after " << done << " completions";
        ASSERT_EQ(whsem_op_poll(op), WHSEM_OK);
        whsem_ticket t;
        WH_OK(whsem_op_take_ticket(op, &t));
        WH_OK(whsem_release(t));
    }
    ASSERT_TRUE(Eventually([&] { return rec.total == kOps; }));
    for (auto op : ops) {
        EXPECT_EQ(rec.calls[op], 1);
        WH_OK(whsem_op_free(op));
    }
    // The dispatcher and one callback thread: more come only while
    // callbacks block, and these do not.
    int added = ThreadCount() - threads_before;
    printf("after %d completions: +%d threads\n", kOps, added);
    EXPECT_LE(added, 3);
    whsem_info info = InfoWithFree(sem.get(), 4);
    EXPECT_EQ(info.free_count, 4);
    EXPECT_EQ(info.waiters, 0u);
}

TEST(Async, AKilledHolderHandsItsTicketToAnAsyncWaiter)
{
    Sem sem(1);
    Child holder({"hold", sem.name(), "1", "1"});
    ASSERT_TRUE(Eventually([&] { return Info(sem.get()).free_count == 0; }));
    whsem_op op;
    WH_OK(whsem_acquire_async(sem.get(), 60000, 0, nullptr, nullptr, &op));
    EXPECT_EQ(whsem_op_poll(op), WHSEM_PENDING);
    EXPECT_EQ(holder.Kill(), kKilled);
    EXPECT_EQ(whsem_op_wait(op, WHSEM_INFINITE), WHSEM_OK);
    WH_OK(whsem_op_free(op)); // releases the untaken ticket
    EXPECT_EQ(InfoWithFree(sem.get(), 1).free_count, 1);
    if (CountsRecoveries()) EXPECT_GE(Info(sem.get()).recoveries, 1u);
}

// With no abandonment scans at all (WHSEM_INFINITE), nothing but this
// process watching the holder's process while it waits can bring the
// holder's tickets back: a blocking waiter and an asynchronous one both
// get theirs when it is killed. (No query after the kill: a query looks
// for dead holders itself.)
TEST(Async, AKilledHolderIsNoticedWithoutPolling)
{
    whsem_open_options o{};
    o.struct_size = sizeof o;
    o.abandonment_check_ms = WHSEM_INFINITE;
    Sem sem(2, "unpolled", &o);
    Child holder({"hold", sem.name(), "2", "2"});
    ASSERT_TRUE(Eventually([&] { return Info(sem.get()).free_count == 0; }));
    whsem_op op;
    WH_OK(whsem_acquire_async(sem.get(), 60000, 0, nullptr, nullptr, &op));
    std::atomic<whsem_status> blocking{WHSEM_PENDING};
    whsem_ticket blocking_ticket = 0;
    std::thread waiter([&] { blocking = whsem_acquire(sem.get(), 60000, 0, &blocking_ticket); });
    ASSERT_TRUE(Eventually([&] { return Info(sem.get()).waiters == 2; }));
    EXPECT_EQ(holder.Kill(), kKilled);
    EXPECT_EQ(whsem_op_wait(op, 60000), WHSEM_OK);
    waiter.join();
    EXPECT_EQ(blocking.load(), WHSEM_OK);
    whsem_ticket t;
    WH_OK(whsem_op_take_ticket(op, &t));
    WH_OK(whsem_op_free(op));
    WH_OK(whsem_release(t));
    WH_OK(whsem_release(blocking_ticket));
    whsem_info info = InfoWithFree(sem.get(), 2);
    EXPECT_EQ(info.free_count, 2);
    if (CountsRecoveries()) EXPECT_GE(info.recoveries, 1u);
}

TEST(Async, ProcessExitWithPendingOperationsLosesNothing)
{
    Sem sem(1);
    whsem_ticket held;
    WH_OK(whsem_acquire(sem.get(), 0, 0, &held));
    Child child({"exitpending", sem.name(), "1"});
    EXPECT_EQ(child.Reap(), 0);
    WH_OK(whsem_release(held));
    // The dead child's wants are cleared; the ticket is here for us.
    whsem_ticket t;
    WH_OK(whsem_acquire(sem.get(), 30000, 0, &t));
    WH_OK(whsem_release(t));
    EXPECT_TRUE(Eventually([&] { return Info(sem.get()).waiters == 0; }));
}

#ifndef _WIN32
TEST(Async, ForkedChildSeesInheritedOperationsAsTheParents)
{
    Sem sem(1);
    whsem_ticket held;
    WH_OK(whsem_acquire(sem.get(), 0, 0, &held));
    whsem_op op;
    WH_OK(whsem_acquire_async(sem.get(), WHSEM_INFINITE, 0, nullptr, nullptr, &op));
    pid_t child = Spawn([&] {
        // Each answer comes with the message of the operation's ending (since 1.1).
        auto says_fork = [] {
            bool r = strstr(whsem_last_error(), "fork()") != nullptr;
            whsem_release(0); // something else, for the next call to replace
            return r;
        };
        whsem_release(0);
        if (whsem_op_poll(op) != WHSEM_E_WRONG_PROCESS || !says_fork()) return 1;
        if (whsem_op_wait(op, WHSEM_INFINITE) != WHSEM_E_WRONG_PROCESS || !says_fork()) return 2;
        whsem_ticket t = 1;
        if (whsem_op_take_ticket(op, &t) != WHSEM_E_WRONG_PROCESS || !says_fork() || t != 0) return 7;
        if (whsem_op_free(op) != WHSEM_OK) return 3;
        // The child's own asynchronous acquisitions work. A PostgreSQL
        // handle's connections are its parent's: through it they end as
        // the parent's, and the child opens the name itself.
        whsem_sem use = sem.get();
        whsem_op mine;
        if (!OnSharedMemory()) {
            if (whsem_acquire_async(use, 50, 0, nullptr, nullptr, &mine) != WHSEM_OK) return 8;
            if (whsem_op_wait(mine, WHSEM_INFINITE) != WHSEM_E_WRONG_PROCESS || !says_fork()) return 9;
            if (whsem_op_free(mine) != WHSEM_OK) return 10;
            if (whtest_open(sem.c_name(), 1, nullptr, &use) != WHSEM_OK) return 11;
        }
        if (whsem_acquire_async(use, 50, 0, nullptr, nullptr, &mine) != WHSEM_OK) return 4;
        if (whsem_op_wait(mine, WHSEM_INFINITE) != WHSEM_TIMEOUT) return 5;
        return whsem_op_free(mine) == WHSEM_OK ? 0 : 6;
    });
    EXPECT_EQ(Reap(child), 0);
    EXPECT_EQ(whsem_op_poll(op), WHSEM_PENDING); // the parent's is untouched
    WH_OK(whsem_release(held));
    EXPECT_EQ(whsem_op_wait(op, WHSEM_INFINITE), WHSEM_OK);
    WH_OK(whsem_op_free(op));
    // On PostgreSQL the child's queued wait may outlive it by the moment
    // the server takes to see its session end, and be granted meanwhile.
    EXPECT_EQ(InfoWithFree(sem.get(), 1).free_count, 1);
}

// The dispatcher is the thread that finds the segment truncated under a
// pending operation; the message still reaches whoever asks about it.
TEST(Async, AnOperationOnATruncatedSegmentEndsWithItsMessage)
{
    Sem sem(1);
    whsem_ticket held;
    WH_OK(whsem_acquire(sem.get(), 0, 0, &held));
    whsem_op op;
    WH_OK(whsem_acquire_async(sem.get(), WHSEM_INFINITE, 0, nullptr, nullptr, &op));
    ASSERT_EQ(truncate(SegmentPath(sem.name()).c_str(), 0), 0) << strerror(errno);
    auto says_truncated = [] {
        bool r = strstr(whsem_last_error(), "truncated") != nullptr;
        EXPECT_TRUE(r) << whsem_last_error();
        whsem_release(0); // something else, for the next call to replace
        return r;
    };
    whsem_release(0);
    // The dispatcher looks again within an abandonment-check period (100 ms).
    EXPECT_EQ(whsem_op_wait(op, 30000), WHSEM_E_CORRUPT);
    says_truncated();
    EXPECT_EQ(whsem_op_poll(op), WHSEM_E_CORRUPT);
    says_truncated();
    whsem_ticket t = 1;
    EXPECT_EQ(whsem_op_take_ticket(op, &t), WHSEM_E_CORRUPT);
    says_truncated();
    EXPECT_EQ(t, 0u);
    WH_OK(whsem_op_free(op));
    whsem_release(held); // an error or OK, but no crash
}
#endif
