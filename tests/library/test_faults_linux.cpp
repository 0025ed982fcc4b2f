// SPDX-License-Identifier: MIT
// Linux-only fault cases (issue 12): a process dying inside the lock while
// a child it forked (or the command of whsem run) lives on, and a live
// process stopped inside the lock. They need fork(), SIGSTOP and
// whsem_share_liveness, which only Linux has.
#include "util.h"

#include <vector>

using namespace whtest;

namespace {

// Runs `before` in a child, then arms the fault point and runs `fatal`,
// which must die there.
int DieAt(const char *point, const std::function<void()> &before, const std::function<void()> &fatal)
{
    pid_t child = Spawn([&] {
        before();
        setenv("WHSEM_FAULT_POINT", point, 1);
        fatal();
        return 50; // the fault point did not fire
    });
    return Reap(child);
}

// What dies at the "acquire" fault point: a fresh open of a max-2 name
// and a try for one of its tickets.
void OpenAndAcquire(const char *name)
{
    whsem_sem s;
    whsem_ticket t;
    if (whsem_open(name, 2, nullptr, &s) == WHSEM_OK) whsem_acquire(s, 0, 0, &t);
}

} // namespace

// ---- Issue 12: nothing a process leaves behind, and no process that stops,
// keeps the others waiting past their timeouts.

namespace {

using Clock = std::chrono::steady_clock;

// The pid of a process of the dying one's making that outlives it.
struct Orphan {
    std::atomic<pid_t> pid{0};
};

} // namespace

// A process that forked a child (which inherits its descriptors and its
// mapping of the segment) and died inside the segment lock: the child must
// not keep the dead parent's lock, nor its tickets, alive.
class FaultsFork : public ::testing::TestWithParam<bool> {};

TEST_P(FaultsFork, DeathInsideTheLockWithALiveChildIsRepairedInTime)
{
    const bool raw = GetParam();
    // The dying process maps the name itself (we open it only afterwards),
    // so that its child inherits the dying process's own mapping.
    std::string name = UniqueName("forklock");
    auto *orphan = SharedAlloc<Orphan>();
    int code = DieAt(
        "acquire",
        [&] {
            whsem_sem s;
            whsem_ticket t;
            whsem_open(name.c_str(), 2, nullptr, &s);
            whsem_acquire(s, 0, 0, &t); // one ticket held, then a child
            orphan->pid = ForkSleeper(raw);
        },
        [&] { OpenAndAcquire(name.c_str()); });
    ASSERT_EQ(code, 128 + SIGKILL) << "the fault point did not fire";
    ASSERT_GT(orphan->pid.load(), 0);
    // Both tickets (the one held, the one being taken) come back while the
    // child still lives; nothing may wait for the child.
    auto t0 = Clock::now();
    pid_t user = Spawn([&] {
        whsem_sem s;
        whsem_ticket a, b;
        if (whsem_open(name.c_str(), 2, nullptr, &s) != WHSEM_OK) return 1;
        if (whsem_acquire(s, 5000, 0, &a) != WHSEM_OK) return 2;
        if (whsem_acquire(s, 5000, 0, &b) != WHSEM_OK) return 3;
        return 0;
    });
    EXPECT_EQ(Reap(user), 0);
    EXPECT_LT(SecondsSince(t0), 10.0);
    EXPECT_EQ(kill(orphan->pid, 0), 0) << "the child must still be alive for this test to mean anything";
    kill(orphan->pid, SIGKILL);
    whsem_unlink(name.c_str(), WHSEM_UNLINK_FORCE);
    SharedFree(orphan);
}

INSTANTIATE_TEST_SUITE_P(ForkKinds, FaultsFork, ::testing::Values(false, true), ForkKindName);

// whsem run hands a descriptor to its command on purpose so that its ticket
// lives as long as the command does. If whsem run itself dies inside the
// lock, the command keeps the ticket, but not the lock.
TEST(FaultsInherited, DeathInsideTheLockOfAProcessThatSharedItsLiveness)
{
    Sem sem(2, "inherit");
    auto *orphan = SharedAlloc<Orphan>();
    int code = DieAt(
        "acquire",
        [&] {
            whsem_sem s;
            whsem_ticket t;
            int32_t fd = -1;
            whsem_open(sem.c_name(), 2, nullptr, &s);
            whsem_acquire(s, 0, 0, &t);
            if (whsem_share_liveness(s, &fd) != WHSEM_OK) return;
            orphan->pid = ForkSleeper(false); // the "command", holding fd
            close(fd);
        },
        [&] { OpenAndAcquire(sem.c_name()); });
    ASSERT_EQ(code, 128 + SIGKILL) << "the fault point did not fire";
    ASSERT_GT(orphan->pid.load(), 0);
    auto t0 = Clock::now();
    whsem_ticket a, b;
    WH_EXPECT(WHSEM_OK, whsem_acquire(sem.get(), 5000, 0, &a)); // the lock is taken over
    EXPECT_LT(SecondsSince(t0), 5.0);
    WH_EXPECT(WHSEM_TIMEOUT, whsem_acquire(sem.get(), 300, 0, &b)); // the command's ticket lives
    kill(orphan->pid, SIGKILL); // not our child: init reaps it
    WH_EXPECT(WHSEM_OK, whsem_acquire(sem.get(), 10000, 0, &b)); // and comes back when it dies
    whsem_release(a);
    whsem_release(b);
    SharedFree(orphan);
}

// A live process stopped (SIGSTOP, a debugger) inside the segment lock:
// every call with a timeout returns within it, nothing is lost, and when
// the process goes on everything works again.
TEST(FaultsStopped, CallsWithTimeoutsReturnWhileTheLockHolderIsStopped)
{
    Sem sem(3, "stopped");
    whsem_ticket held, other;
    WH_OK(whsem_acquire(sem.get(), 0, 0, &held));
    WH_OK(whsem_acquire(sem.get(), 0, 0, &other));
    auto *step = SharedAlloc<std::atomic<int>>();
    // The child takes the last ticket, and stops inside the lock while it
    // gives it back.
    pid_t child = Spawn([&] {
        whsem_sem s;
        whsem_ticket t;
        if (whsem_open(sem.c_name(), 3, nullptr, &s) != WHSEM_OK) return 1;
        if (whsem_acquire(s, 0, 0, &t) != WHSEM_OK) return 2;
        *step = 1;
        while (*step != 2) usleep(1000);
        setenv("WHSEM_FAULT_POINT", "release", 1);
        setenv("WHSEM_FAULT_ACTION", "stop", 1);
        return whsem_release(t) == WHSEM_OK ? 0 : 3;
    });
    ASSERT_TRUE(Eventually([&] { return *step == 1; }));
    // A waiter that registered before the stop: it gives up while the lock
    // is not to be had, and its registration must be paid back later.
    std::atomic<int> waited{-100};
    std::thread waiter([&] {
        whsem_ticket t;
        waited = whsem_acquire(sem.get(), 1500, 0, &t);
        if (waited == WHSEM_OK) whsem_release(t);
    });
    ASSERT_TRUE(Eventually([&] { return Info(sem.get()).waiters == 1; }));
    *step = 2;
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, WUNTRACED), child);
    ASSERT_TRUE(WIFSTOPPED(status)) << "the child did not stop at the fault point";

    auto t0 = Clock::now();
    whsem_ticket t;
    WH_EXPECT(WHSEM_TIMEOUT, whsem_acquire(sem.get(), 0, 0, &t));
    EXPECT_LT(SecondsSince(t0), 2.0) << "a try-acquire must not wait for a stopped process";
    EXPECT_NE(std::string(whsem_last_error()).find("stopped"), std::string::npos) << whsem_last_error();

    t0 = Clock::now();
    WH_EXPECT(WHSEM_TIMEOUT, whsem_acquire(sem.get(), 300, 0, &t));
    EXPECT_LT(SecondsSince(t0), 3.0);

    whsem_cancel c;
    WH_OK(whsem_cancel_new(&c));
    std::atomic<int> canceled{-100};
    std::thread infinite([&] {
        whsem_ticket x;
        canceled = whsem_acquire(sem.get(), WHSEM_INFINITE, c, &x);
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    t0 = Clock::now();
    WH_OK(whsem_cancel_trigger(c));
    infinite.join();
    EXPECT_EQ(canceled.load(), WHSEM_CANCELED);
    EXPECT_LT(SecondsSince(t0), 2.0);
    whsem_cancel_free(c);

    whsem_op op;
    t0 = Clock::now();
    WH_OK(whsem_acquire_async(sem.get(), 300, 0, nullptr, nullptr, &op));
    WH_EXPECT(WHSEM_TIMEOUT, whsem_op_wait(op, 10000));
    EXPECT_LT(SecondsSince(t0), 3.0);
    WH_OK(whsem_op_free(op));

    pid_t opener = Spawn([&] {
        whsem_sem s;
        auto start = Clock::now();
        whsem_status st = whsem_open(sem.c_name(), 3, nullptr, &s);
        if (st != WHSEM_E_BUSY) return 1;
        return SecondsSince(start) < 5.0 ? 0 : 2;
    });
    EXPECT_EQ(Reap(opener), 0) << "open must give up with WHSEM_E_BUSY";

    waiter.join();
    EXPECT_EQ(waited.load(), WHSEM_TIMEOUT);

    kill(child, SIGCONT);
    EXPECT_EQ(Reap(child), 0);
    // Registrations of the waits that gave up are paid back, and a ticket
    // granted to them meanwhile goes back to the pool.
    EXPECT_TRUE(Eventually([&] {
        whsem_info i = Info(sem.get());
        return i.waiters == 0 && i.free_count == 1;
    }));
    WH_EXPECT(WHSEM_OK, whsem_acquire(sem.get(), 5000, 0, &t));
    WH_OK(whsem_release(t));
    WH_OK(whsem_release(held));
    WH_OK(whsem_release(other));
    EXPECT_EQ(Info(sem.get()).free_count, 3);
    SharedFree(step);
}
