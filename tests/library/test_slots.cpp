// SPDX-License-Identifier: MIT
// The slot table's rules (src/linux/layout.h): what a name touches, the
// high-water mark that every walk stops at, the reuse of slots whose
// owners died, slots beyond the hwm that only a library before the rule
// leaves behind, and names that keep no descriptor open. Linux only: they
// read and write the segment file.
#include "segment_peek.h"
#include "util.h"

#include <sys/resource.h>
#include <sys/stat.h>
#include <vector>

using namespace whtest;

namespace {

uint32_t Hwm(const std::string &name)
{
    uint32_t hwm = UINT32_MAX;
    EXPECT_EQ(whtest_seg_hwm(SegmentPath(name).c_str(), &hwm), 0);
    return hwm;
}

// The rule every walk relies on: nothing is counted at or beyond the hwm.
void ExpectNothingBeyondTheHwm(const std::string &name)
{
    uint32_t hwm = Hwm(name);
    for (uint32_t i = hwm; i < whtest_seg_nslots(); i++) {
        whtest_slot s{};
        ASSERT_EQ(whtest_seg_slot(SegmentPath(name).c_str(), i, &s), 0);
        EXPECT_EQ(s.held + s.grants + s.want, 0u) << "slot " << i << " beyond the hwm " << hwm;
    }
}

uint64_t OurPidNamespace()
{
    struct stat st{};
    return stat("/proc/self/ns/pid", &st) == 0 ? (uint64_t)st.st_ino : 0;
}

} // namespace

TEST(Slots, ANameAFewProcessesUseTouchesTwoPages)
{
    Sem sem(2, "pages");
    std::vector<std::unique_ptr<Child>> others;
    for (int k = 0; k < 3; k++) others.push_back(std::make_unique<Child>(std::vector<std::string>{"open", sem.name(), "2"}));
    ASSERT_TRUE(Eventually([&] { return Info(sem.get()).processes == 4; }));
    whsem_ticket t;
    WH_OK(whsem_acquire(sem.get(), 0, 0, &t));
    WH_OK(whsem_release(t));
    // The header and the first 64 slots: 8 KiB, where all 1,024 slots were
    // touched before (68 KiB).
    EXPECT_LE(whtest_seg_pages(SegmentPath(sem.name()).c_str()), 2);
    EXPECT_LE(Hwm(sem.name()), 4u);
}

// A slot given back is the next one taken (the free-slot hint points at
// it), not one past the hwm.
TEST(Slots, ASlotGivenBackIsTheNextOneTaken)
{
    Sem sem(2, "giveback");
    Child first({"open", sem.name(), "2"});
    ASSERT_TRUE(Eventually([&] { return Info(sem.get()).processes == 2; }));
    pid_t closer = Spawn([&] {
        whsem_sem s;
        if (whsem_open(sem.c_name(), 2, nullptr, &s) != WHSEM_OK) return 1;
        return whsem_close(s) == WHSEM_OK ? 0 : 2;
    });
    ASSERT_EQ(Reap(closer), 0);
    // The close gave the slot back, or, if the mapping's teardown was
    // still deferred when the process exited, this query's scan does.
    ASSERT_EQ(Info(sem.get()).processes, 2u);
    uint32_t hwm = Hwm(sem.name());
    whtest_slot freed{};
    ASSERT_EQ(whtest_seg_slot(SegmentPath(sem.name()).c_str(), hwm - 1, &freed), 0);
    ASSERT_EQ(freed.state, 0u);
    Child next({"open", sem.name(), "2"});
    ASSERT_TRUE(Eventually([&] { return Info(sem.get()).processes == 3; }));
    EXPECT_EQ(Hwm(sem.name()), hwm);
    whtest_slot slot{};
    ASSERT_EQ(whtest_seg_slot(SegmentPath(sem.name()).c_str(), hwm - 1, &slot), 0);
    EXPECT_EQ(slot.pid, (int32_t)next.pid());
}

// Processes that exit without closing leave ACTIVE slots behind; the next
// ones take them over instead of raising the hwm, and tickets a dead one
// held come back.
TEST(Slots, SlotsOfProcessesThatExitWithoutClosingAreReused)
{
    whsem_open_options o = CheckingEvery(10);
    Sem sem(2, "reuse", &o);
    for (int k = 0; k < 60; k++) {
        pid_t p = Spawn([&] {
            whsem_sem s;
            whsem_ticket t;
            if (whsem_open(sem.c_name(), 2, &o, &s) != WHSEM_OK) return 1;
            if (whsem_acquire(s, 10000, 0, &t) != WHSEM_OK) return 2;
            // Every third one dies holding its ticket.
            if (k % 3 != 0 && whsem_release(t) != WHSEM_OK) return 3;
            return 0;
        });
        ASSERT_EQ(Reap(p), 0) << "process " << k;
        ExpectNothingBeyondTheHwm(sem.name());
    }
    EXPECT_LE(Hwm(sem.name()), 4u);
    EXPECT_LE(whtest_seg_pages(SegmentPath(sem.name()).c_str()), 2);
    std::vector<whsem_ticket> all(2);
    for (auto &t : all) WH_EXPECT(WHSEM_OK, whsem_acquire(sem.get(), 10000, 0, &t));
    whsem_ticket extra;
    WH_EXPECT(WHSEM_TIMEOUT, whsem_acquire(sem.get(), 0, 0, &extra));
    for (auto t : all) WH_OK(whsem_release(t));
}

// A process that attaches asks about the slots holding tickets before it
// takes a free one: dead holders' tickets come back at once, without
// waiting for an abandonment scan; with more than one dead, the attach
// scans.
class SlotsDeadHolders : public ::testing::TestWithParam<int> {};

TEST_P(SlotsDeadHolders, AnAttachingProcessGivesTheirTicketsBackAtOnce)
{
    const int dead = GetParam();
    Sem sem(2, "newcomer");
    std::vector<std::unique_ptr<Child>> others, holders;
    for (int k = 0; k < 3; k++) others.push_back(std::make_unique<Child>(std::vector<std::string>{"open", sem.name(), "2"}));
    for (int k = 0; k < dead; k++)
        holders.push_back(std::make_unique<Child>(std::vector<std::string>{"hold", sem.name(), "2", "1"}));
    // Ourselves, the three others and the holders, all attached.
    ASSERT_TRUE(Eventually([&] {
        whsem_info i = Info(sem.get());
        return i.holders == (uint32_t)dead && i.processes == 4u + (uint32_t)dead;
    }));
    pid_t closer = Spawn([&] { // leaves a FREE slot below the hwm
        whsem_sem s;
        return whsem_open(sem.c_name(), 2, nullptr, &s) == WHSEM_OK && whsem_close(s) == WHSEM_OK ? 0 : 1;
    });
    ASSERT_EQ(Reap(closer), 0);
    ASSERT_EQ(Info(sem.get()).processes, 4u + (uint32_t)dead); // and a scan, just now
    for (auto &h : holders) EXPECT_EQ(h->Kill(), kKilled);
    pid_t newcomer = Spawn([&] {
        whsem_open_options o = CheckingEvery(600000); // no scan is due
        whsem_sem s;
        whsem_ticket t[2];
        if (whsem_open(sem.c_name(), 2, &o, &s) != WHSEM_OK) return 1;
        for (int k = 0; k < 2; k++)
            if (whsem_acquire(s, 0, 0, &t[k]) != WHSEM_OK) return 2 + k;
        return 0;
    });
    EXPECT_EQ(Reap(newcomer), 0);
}

INSTANTIATE_TEST_SUITE_P(Deaths, SlotsDeadHolders, ::testing::Values(1, 2));

// A 1.0 process that died between marking its slot ACTIVE and raising the
// hwm left an ACTIVE slot beyond the hwm (holding nothing). With every
// other slot taken, an attaching process must still find it.
TEST(Slots, ADeadOwnersSlotBeyondTheHwmIsTakenWhenNothingElseIsFree)
{
    std::string name = UniqueName("beyond");
    std::string path = SegmentPath(name);
    whsem_sem s;
    WH_OK(whsem_open(name.c_str(), 2, nullptr, &s));
    WH_OK(whsem_close(s)); // the file stays, every slot FREE, hwm 1
    pid_t dead = Spawn([] { return 0; });
    ASSERT_EQ(Reap(dead), 0);
    const uint32_t beyond = 1000;
    for (uint32_t i = 0; i < whtest_seg_nslots(); i++) {
        whtest_slot slot{};
        slot.state = WHTEST_SLOT_CLAIMED; // claims in progress: never taken
        if (i == beyond) {
            slot.state = WHTEST_SLOT_ACTIVE; // 1.0's: no flags
            slot.pid = dead;
            slot.pidns = OurPidNamespace();
            slot.start_ticks = 12345;
        }
        ASSERT_EQ(whtest_seg_set_slot(path.c_str(), i, &slot), 0);
    }
    ASSERT_EQ(Hwm(name), 1u);
    WH_OK(whsem_open(name.c_str(), 2, nullptr, &s));
    whtest_slot mine{};
    ASSERT_EQ(whtest_seg_slot(path.c_str(), beyond, &mine), 0);
    EXPECT_EQ(mine.pid, getpid());
    EXPECT_EQ(mine.state, WHTEST_SLOT_ACTIVE);
    EXPECT_EQ(Hwm(name), beyond + 1) << "raised before the slot could hold anything";
    std::vector<whsem_ticket> all(2);
    for (auto &t : all) WH_EXPECT(WHSEM_OK, whsem_acquire(s, 0, 0, &t));
    whsem_ticket extra;
    WH_EXPECT(WHSEM_TIMEOUT, whsem_acquire(s, 0, 0, &extra));
    ExpectNothingBeyondTheHwm(name);
    for (auto t : all) WH_OK(whsem_release(t));
    whsem_info info = Info(s);
    EXPECT_EQ(info.free_count, 2);
    EXPECT_EQ(info.processes, 1u);
    WH_OK(whsem_close(s));
    WH_OK(whsem_unlink(name.c_str(), WHSEM_UNLINK_FORCE));
}

// A process may have far more names open than descriptors: none is kept
// per name, so the application's own limit is all its own.
TEST(Slots, OpenNamesKeepNoDescriptorOpen)
{
    std::string prefix = UniqueName("nofd");
    pid_t p = Spawn([&] {
        struct rlimit rl;
        getrlimit(RLIMIT_NOFILE, &rl);
        rl.rlim_cur = 64;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) return 1;
        int before = DirEntries("/proc/self/fd");
        std::vector<whsem_sem> sems(300);
        int code = 0;
        for (size_t i = 0; i < sems.size() && !code; i++)
            if (whsem_open((prefix + "-" + std::to_string(i)).c_str(), 1, nullptr, &sems[i]) != WHSEM_OK)
                code = 2;
        if (!code && DirEntries("/proc/self/fd") != before) code = 3;
        for (size_t i = 0; i < sems.size() && !code; i++) {
            whsem_ticket t;
            if (whsem_acquire(sems[i], 0, 0, &t) != WHSEM_OK || whsem_release(t) != WHSEM_OK) code = 4;
        }
        for (size_t i = 0; i < sems.size(); i++) {
            if (sems[i]) whsem_close(sems[i]);
            whsem_unlink((prefix + "-" + std::to_string(i)).c_str(), WHSEM_UNLINK_FORCE);
        }
        if (code) fprintf(stderr, "code %d: %s\n", code, whsem_last_error());
        return code;
    });
    EXPECT_EQ(Reap(p), 0);
}

// A forked child that uses a handle of its parent attaches as itself: its
// own pid (read after the fork, on first use) is what others see.
TEST(Fork, AChildUsesItsParentsHandleAsItself)
{
    Sem sem(2, "forkself");
    auto *step = SharedAlloc<std::atomic<int>>();
    pid_t child = Spawn([&] {
        whsem_ticket t;
        if (whsem_acquire(sem.get(), 0, 0, &t) != WHSEM_OK) return 1;
        *step = 1;
        for (;;) pause();
    });
    ASSERT_TRUE(Eventually([&] { return *step == 1; }));
    std::vector<whsem_holder> holders = Holders(sem.get());
    ASSERT_EQ(holders.size(), 1u);
    EXPECT_EQ(holders[0].pid, (int64_t)child);
    kill(child, SIGKILL);
    Reap(child);
    whsem_ticket a, b;
    WH_EXPECT(WHSEM_OK, whsem_acquire(sem.get(), 10000, 0, &a));
    WH_EXPECT(WHSEM_OK, whsem_acquire(sem.get(), 10000, 0, &b));
    whsem_release(a);
    whsem_release(b);
    SharedFree(step);
}

// No descriptor is kept per name, so a child forked after the name was
// removed has nothing to reach the old file through: it is told so, and
// opening the name again gives it the new semaphore.
TEST(Fork, AChildCannotAttachToANameRemovedBeforeItsFirstUse)
{
    Sem sem(2, "forkgone");
    WH_OK(whsem_unlink(sem.c_name(), WHSEM_UNLINK_FORCE));
    whsem_ticket t;
    WH_OK(whsem_acquire(sem.get(), 0, 0, &t)); // the parent keeps its file
    WH_OK(whsem_release(t));
    pid_t child = Spawn([&] {
        whsem_ticket x;
        if (whsem_acquire(sem.get(), 0, 0, &x) != WHSEM_E_NOT_FOUND) return 1;
        if (std::string(whsem_last_error()).find("removed") == std::string::npos) return 2;
        whsem_sem again;
        if (whsem_open(sem.c_name(), 2, nullptr, &again) != WHSEM_OK) return 3;
        return whsem_acquire(again, 0, 0, &x) == WHSEM_OK ? 0 : 4;
    });
    EXPECT_EQ(Reap(child), 0);
}

// The file of a removed name cannot be opened again to ask about liveness
// bytes: /proc alone tells that a holder of our pid namespace died.
TEST(Crash, ADeadHoldersTicketComesBackOnARemovedName)
{
    whsem_open_options o = CheckingEvery(10);
    Sem sem(1, "gonename", &o);
    Child holder({"hold", sem.name(), "1", "1"});
    ASSERT_TRUE(Eventually([&] { return Info(sem.get()).holders == 1; }));
    WH_OK(whsem_unlink(sem.c_name(), WHSEM_UNLINK_FORCE));
    EXPECT_EQ(holder.Kill(), kKilled);
    whsem_ticket t;
    WH_EXPECT(WHSEM_OK, whsem_acquire(sem.get(), 10000, 0, &t));
    whsem_release(t);
}
