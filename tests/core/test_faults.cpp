// A process killed at a test-only fault point inside the segment lock's
// critical section: whoever needs the lock next takes it over and the
// counts are repaired. Linked against a build of the library with
// WHSEM_FAULT_INJECTION (the shipped library has no fault points).
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

struct Case {
    const char *point;
    int32_t max;
    int held_before; // tickets the dying process holds before the fault
};

} // namespace

class Faults : public ::testing::TestWithParam<Case> {};

TEST_P(Faults, DeathInsideTheCriticalSectionIsRepaired)
{
    const Case c = GetParam();
    Sem sem(c.max, c.point);
    const std::string point = c.point;
    int code = DieAt(
        c.point,
        [&] {
            if (point == "attach") return; // attaching is what must die
            whsem_sem s;
            whsem_open(sem.c_name(), c.max, nullptr, &s);
            for (int i = 0; i < c.held_before; i++) {
                whsem_ticket t;
                whsem_acquire(s, 0, 0, &t);
            }
        },
        [&] {
            whsem_sem s;
            if (whsem_open(sem.c_name(), c.max, nullptr, &s) != WHSEM_OK) return;
            whsem_ticket t;
            if (whsem_acquire(s, 0, 0, &t) != WHSEM_OK) return;
            if (point == "release") whsem_release(t);
        });
    ASSERT_EQ(code, 128 + SIGKILL) << "the fault point " << c.point << " did not fire";
    // The dead process held the segment lock. The next user takes it over,
    // recounts, and every ticket is available again.
    std::vector<whsem_ticket> all(c.max);
    for (auto &t : all) WH_EXPECT(WHSEM_OK, whsem_acquire(sem.get(), 20000, 0, &t));
    whsem_ticket extra;
    WH_EXPECT(WHSEM_TIMEOUT, whsem_acquire(sem.get(), 0, 0, &extra));
    for (auto t : all) WH_OK(whsem_release(t));
    whsem_info info = Info(sem.get());
    EXPECT_EQ(info.free_count, c.max);
    EXPECT_EQ(info.waiters, 0u);
    EXPECT_GE(info.recoveries, 1u);
}

INSTANTIATE_TEST_SUITE_P(Points, Faults,
                         ::testing::Values(Case{"acquire", 2, 0}, Case{"acquire", 3, 1},
                                           Case{"release", 2, 0}, Case{"release", 3, 2},
                                           Case{"attach", 2, 0}),
                         [](const ::testing::TestParamInfo<Case> &i) {
                             return std::string(i.param.point) + "_max" +
                                    std::to_string(i.param.max) + "_held" +
                                    std::to_string(i.param.held_before);
                         });

// A process dies while it reclaims another dead process's tickets.
TEST(FaultsScan, DeathWhileReclaimingADeadHolderIsRepaired)
{
    Sem sem(2, "scan");
    auto *step = SharedAlloc<std::atomic<int>>();
    pid_t holder = Spawn([&] {
        whsem_sem s;
        whsem_ticket t;
        if (whsem_open(sem.c_name(), 2, nullptr, &s) != WHSEM_OK) return 1;
        if (whsem_acquire(s, 0, 0, &t) != WHSEM_OK) return 2;
        *step = 1;
        for (;;) pause();
    });
    ASSERT_TRUE(Eventually([&] { return *step == 1; }));
    // The scanner attaches while the holder lives, so that it later meets
    // the dead holder's slot in a scan (not by taking the slot over).
    pid_t scanner = Spawn([&] {
        whsem_sem s;
        if (whsem_open(sem.c_name(), 2, nullptr, &s) != WHSEM_OK) return 1;
        *step = 2;
        while (*step != 3) usleep(1000);
        setenv("WHSEM_FAULT_POINT", "scan", 1);
        size_t n;
        whsem_query(s, nullptr, nullptr, 0, &n); // a full scan finds the dead holder
        return 50;
    });
    ASSERT_TRUE(Eventually([&] { return *step == 2; }));
    kill(holder, SIGKILL);
    Reap(holder);
    *step = 3;
    ASSERT_EQ(Reap(scanner), 128 + SIGKILL) << "the fault point did not fire";
    std::vector<whsem_ticket> all(2);
    for (auto &t : all) WH_EXPECT(WHSEM_OK, whsem_acquire(sem.get(), 20000, 0, &t));
    for (auto t : all) WH_OK(whsem_release(t));
    EXPECT_EQ(Info(sem.get()).free_count, 2);
    SharedFree(step);
}

// A process killed between handing its ticket to a waiting process and
// waking it: the grant stays with the waiter's process, which takes it.
TEST(FaultsHandoff, DeathBetweenGrantAndWakeLosesNothing)
{
    Sem sem(1, "handoff");
    auto *ready = SharedAlloc<std::atomic<int>>();
    pid_t holder = Spawn([&] {
        whsem_sem s;
        whsem_ticket t;
        if (whsem_open(sem.c_name(), 1, nullptr, &s) != WHSEM_OK) return 1;
        if (whsem_acquire(s, 0, 0, &t) != WHSEM_OK) return 2;
        *ready = 1;
        while (*ready != 2) usleep(1000);
        setenv("WHSEM_FAULT_POINT", "handoff", 1);
        whsem_release(t); // dies after granting the ticket to our waiter
        return 50;
    });
    ASSERT_TRUE(Eventually([&] { return *ready == 1; }));
    std::atomic<int> got{-100};
    std::thread waiter([&] {
        whsem_ticket t;
        got = whsem_acquire(sem.get(), 20000, 0, &t);
        if (got == WHSEM_OK) whsem_release(t);
    });
    ASSERT_TRUE(Eventually([&] { return Info(sem.get()).waiters == 1; }));
    *ready = 2;
    EXPECT_EQ(Reap(holder), 128 + SIGKILL);
    waiter.join();
    EXPECT_EQ(got.load(), WHSEM_OK);
    EXPECT_EQ(Info(sem.get()).free_count, 1);
    SharedFree(ready);
}
