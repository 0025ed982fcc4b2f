// SPDX-License-Identifier: MIT
// A process killed at a test-only fault point inside the segment lock's
// critical section: whoever needs the lock next takes it over and the
// counts are repaired. The dying process runs a fault command of
// commands.h in a build with fault points (on Linux this suite, linked
// against the library built with WHSEM_FAULT_INJECTION, forked; on Windows
// whsem_win_helper_fi.exe), so that one suite serves both platforms.
#include "util.h"

#include <vector>

using namespace whtest;

namespace {

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
    Child dying({"fault", c.point, sem.name(), std::to_string(c.max), std::to_string(c.held_before)},
                kFaultHelper);
    ASSERT_EQ(dying.Reap(), kKilled) << "the fault point " << c.point << " did not fire";
    // The dead process held the segment lock. The next user takes it over,
    // recounts, and every ticket is available again.
    std::vector<whsem_ticket> all(c.max);
    for (auto &t : all) WH_EXPECT(WHSEM_OK, whsem_acquire(sem.get(), 30000, 0, &t));
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
    Child holder({"hold", sem.name(), "2", "1"});
    ASSERT_TRUE(Eventually([&] { return Info(sem.get()).holders == 1; }));
    // The scanner attaches while the holder lives, so that it later meets
    // the dead holder's slot in a scan (not by taking the slot over).
    Cue go;
    Child scanner({"faultscan", sem.name(), "2", go.path()}, kFaultHelper);
    ASSERT_TRUE(Eventually([&] { return Info(sem.get()).processes == 3; }));
    EXPECT_EQ(holder.Kill(), kKilled);
    go.Give();
    ASSERT_EQ(scanner.Reap(), kKilled) << "the fault point did not fire";
    std::vector<whsem_ticket> all(2);
    for (auto &t : all) WH_EXPECT(WHSEM_OK, whsem_acquire(sem.get(), 30000, 0, &t));
    for (auto t : all) WH_OK(whsem_release(t));
    EXPECT_EQ(Info(sem.get()).free_count, 2);
}

// A process killed between handing its ticket to a waiting process and
// waking it: the grant stays with the waiter's process, which takes it.
TEST(FaultsHandoff, DeathBetweenGrantAndWakeLosesNothing)
{
    Sem sem(1, "handoff");
    Cue go;
    Child holder({"faulthandoff", sem.name(), go.path()}, kFaultHelper);
    ASSERT_TRUE(Eventually([&] { return Info(sem.get()).holders == 1; }));
    std::atomic<int> got{-100};
    std::thread waiter([&] {
        whsem_ticket t;
        got = whsem_acquire(sem.get(), 30000, 0, &t);
        if (got == WHSEM_OK) whsem_release(t);
    });
    ASSERT_TRUE(Eventually([&] { return Info(sem.get()).waiters == 1; }));
    // Past the 2 ms after which a released ticket is granted outright.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    go.Give();
    EXPECT_EQ(holder.Reap(), kKilled) << "the fault point did not fire";
    waiter.join();
    EXPECT_EQ(got.load(), WHSEM_OK);
    EXPECT_EQ(Info(sem.get()).free_count, 1);
}
