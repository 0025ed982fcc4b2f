// SPDX-License-Identifier: MIT
// Several processes on Windows: the invariant under contention and under
// TerminateProcess, dead holders, deaths inside the segment mutex (fault
// points), and segments that are not what they should be (adapted from
// tests/library/test_process.cpp and test_faults.cpp). The kill -9 of a Wine
// process is tested from the Linux side (kill9.sh).
#include "ledger.h"
#include "util.h"

#include <cstring>
#include <memory>
#include <random>

using namespace whtest;

TEST(Crash, KilledHoldersTicketsReturnToAWaiter)
{
    Sem sem(2);
    Child holder({"hold", sem.name(), "2", "2"});
    ASSERT_TRUE(Eventually([&] { return Info(sem.get()).free_count == 0; }));
    whsem_ticket t;
    WH_EXPECT(WHSEM_TIMEOUT, whsem_acquire(sem.get(), 0, 0, &t));
    std::atomic<int64_t> acquired_ns{0};
    std::thread waiter([&] {
        whsem_ticket w;
        if (whsem_acquire(sem.get(), 60000, 0, &w) == WHSEM_OK) {
            acquired_ns = std::chrono::steady_clock::now().time_since_epoch().count();
            whsem_release(w);
        }
    });
    ASSERT_TRUE(Eventually([&] { return Info(sem.get()).waiters == 1; }));
    auto killed = std::chrono::steady_clock::now();
    EXPECT_EQ(holder.Kill(), kKilled);
    waiter.join();
    ASSERT_NE(acquired_ns.load(), 0) << "the waiter never got the dead holder's ticket";
    double ms = (acquired_ns - killed.time_since_epoch().count()) / 1e6;
    RecordProperty("handoff_after_kill_ms", std::to_string(ms));
    printf("dead holder's ticket reached the waiter %.1f ms after TerminateProcess\n", ms);
    whsem_info info = Info(sem.get());
    EXPECT_EQ(info.free_count, 2);
    EXPECT_GE(info.recoveries, 1u);
}

TEST(Crash, TryAcquireFindsADeadHoldersTicketOnceTheCheckIsDue)
{
    whsem_open_options o{};
    o.struct_size = sizeof o;
    o.abandonment_check_ms = 1;
    Sem sem(1, "try-dead", &o);
    Child holder({"hold", sem.name(), "1", "1"});
    ASSERT_TRUE(Eventually([&] { return Info(sem.get()).free_count == 0; }));
    EXPECT_EQ(holder.Kill(), kKilled);
    whsem_ticket t = 0;
    EXPECT_TRUE(Eventually([&] { return whsem_acquire(sem.get(), 0, 0, &t) == WHSEM_OK; }));
    WH_OK(whsem_release(t));
}

TEST(Crash, QueryShowsTheHolderUntilItDies)
{
    Sem sem(3);
    Child holder({"hold", sem.name(), "3", "2"});
    ASSERT_TRUE(Eventually([&] { return Info(sem.get()).free_count == 1; }));
    whsem_holder h[4];
    size_t n = 0;
    WH_OK(whsem_query(sem.get(), nullptr, h, 4, &n));
    ASSERT_EQ(n, 1u);
    EXPECT_EQ(h[0].pid, (int64_t)holder.pid());
    EXPECT_EQ(h[0].tickets, 2);
    EXPECT_GT(h[0].since_unix_ms, 0);
    EXPECT_EQ(holder.Kill(), kKilled);
    WH_OK(whsem_query(sem.get(), nullptr, h, 4, &n)); // the query itself looks for the dead
    EXPECT_EQ(n, 0u);
    EXPECT_EQ(Info(sem.get()).free_count, 3);
}

// Many processes hammer one semaphore; the ledger proves that no more than
// max_count are ever inside.
TEST(MultiProcess, TenProcessesNeverExceedMaxCount)
{
    Sem sem(3);
    Shared<ledger> l;
    std::vector<std::unique_ptr<Child>> kids;
    for (int p = 0; p < 10; p++)
        kids.push_back(std::make_unique<Child>(
            std::vector<std::string>{"worker", sem.name(), "3", l.name(), "200", std::to_string(p)}));
    for (auto &k : kids) EXPECT_EQ(k->Reap(), 0);
    EXPECT_LE(l->high, 3);
    EXPECT_GE(l->high, 2);
    EXPECT_GT(l->acquisitions, 500);
    whsem_info info = Info(sem.get());
    EXPECT_EQ(info.free_count, 3);
    EXPECT_EQ(info.waiters, 0u);
    EXPECT_EQ(info.processes, 1u);
}

// Workers are killed at random, mostly while holding a ticket (see the
// ledger's rule in helper.c).
TEST(MultiProcess, InvariantHoldsWhileHoldersAreKilledAtRandom)
{
    Sem sem(3);
    Shared<ledger> l;
    std::mt19937 rng(12345);
    std::vector<std::unique_ptr<Child>> kids(LEDGER_WORKERS);
    auto start = [&](int me) {
        l->killed_at[me] = 0;
        kids[me] = std::make_unique<Child>(
            std::vector<std::string>{"chaos", sem.name(), "3", l.name(), std::to_string(me)});
    };
    for (int i = 0; i < LEDGER_WORKERS; i++) start(i);
    ASSERT_TRUE(Eventually([&] { return l->acquisitions > 20; }));
    int kills = 0;
    for (int round = 0; round < 15; round++) {
        Sleep(50 + rng() % 100);
        int victim = (int)(rng() % LEDGER_WORKERS);
        l->killed_at[victim] = ledger_now();
        EXPECT_EQ(kids[victim]->Kill(), kKilled);
        kills++;
        l->holding[victim] = 0; // first the flag, then the new worker
        start(victim);
    }
    InterlockedExchange(&l->stop, 1);
    for (auto &k : kids) EXPECT_EQ(k->Reap(), 0);
    EXPECT_EQ(kills, 15);
    EXPECT_LE(l->high, 3);
    EXPECT_GE(l->high, 2);
    EXPECT_GT(l->acquisitions, 15);
    // Nothing was lost to the dead: all three tickets can be held at once.
    std::vector<whsem_ticket> all(3);
    for (auto &t : all) WH_EXPECT(WHSEM_OK, whsem_acquire(sem.get(), 30000, 0, &t));
    whsem_ticket extra;
    WH_EXPECT(WHSEM_TIMEOUT, whsem_acquire(sem.get(), 0, 0, &extra));
    for (auto t : all) WH_OK(whsem_release(t));
    EXPECT_GE(Info(sem.get()).recoveries, 1u);
}

// ---- segments that are not what they should be ------------------------------------

namespace {

// Writes into the segment of a plain ASCII name (generation 0).
void Poke(const std::string &name, size_t off, const void *bytes, size_t n)
{
    std::string obj = SegmentPath(name);
    HANDLE s = OpenFileMappingA(FILE_MAP_ALL_ACCESS, FALSE, obj.c_str());
    ASSERT_NE(s, nullptr) << obj;
    char *p = (char *)MapViewOfFile(s, FILE_MAP_ALL_ACCESS, 0, 0, 0);
    ASSERT_NE(p, nullptr);
    memcpy(p + off, bytes, n);
    UnmapViewOfFile(p);
    CloseHandle(s);
}

whsem_status OpenStatus(const std::string &name, int32_t max)
{
    whsem_sem s = 0;
    whsem_status st = whsem_open(name.c_str(), max, nullptr, &s);
    if (st == WHSEM_OK) whsem_close(s);
    return st;
}

constexpr size_t kVersionOffset = 8;
constexpr size_t kNameOffset = 64;
constexpr size_t kFreeOffset = 1088; // the first field after the checksummed part
constexpr size_t kSlotsOffset = 4096; // slot i at kSlotsOffset + 64 * i
constexpr size_t kSlotHeldOffset = 4;

} // namespace

// A helper keeps the name open (a section lives while someone holds it);
// this process drops its own mapping so that its next open maps afresh.
std::unique_ptr<Child> Keep(const std::string &name, const std::vector<std::string> &args)
{
    auto keeper = std::make_unique<Child>(args);
    whsem_sem s = 0;
    bool kept = Eventually([&] {
        if (whsem_open_existing(name.c_str(), nullptr, &s) != WHSEM_OK) return false;
        bool both = Info(s).processes == 2;
        whsem_close(s);
        return both;
    });
    EXPECT_TRUE(kept) << "the helper never opened " << name;
    return keeper;
}

TEST(Corrupt, GarbledHeader)
{
    std::string name = UniqueName("corrupt");
    auto keeper = Keep(name, {"open", name, "2"});
    Poke(name, 0, "JUNKJUNK", 8);
    WH_EXPECT(WHSEM_E_CORRUPT, OpenStatus(name, 2));
    EXPECT_NE(strstr(whsem_last_error(), "magic"), nullptr) << whsem_last_error();
    // Unlinking retires the garbled segment: the name works again.
    WH_OK(whsem_unlink(name.c_str(), 0));
    WH_OK(OpenStatus(name, 2));

    name = UniqueName("corrupt");
    auto keeper2 = Keep(name, {"open", name, "2"});
    Poke(name, kNameOffset + 3, "#", 1); // inside the checksummed name
    WH_EXPECT(WHSEM_E_CORRUPT, OpenStatus(name, 2));
}

TEST(Corrupt, GarbledCountsNeverOverAdmit)
{
    std::string name = UniqueName("counts");
    auto holder = Keep(name, {"hold", name, "2", "1"}); // holds one of the two tickets
    int32_t two = 2;
    Poke(name, kFreeOffset, &two, sizeof two); // claims both are free
    WH_EXPECT(WHSEM_E_CORRUPT, OpenStatus(name, 2));
    EXPECT_NE(strstr(whsem_last_error(), "do not add up"), nullptr) << whsem_last_error();
    int32_t minus = -5;
    Poke(name, kFreeOffset, &minus, sizeof minus);
    WH_EXPECT(WHSEM_E_CORRUPT, OpenStatus(name, 2));
}

TEST(Corrupt, OtherLayoutVersionIsIncompatible)
{
    std::string name = UniqueName("layout");
    auto keeper = Keep(name, {"open", name, "1"});
    uint32_t v = 99;
    Poke(name, kVersionOffset, &v, sizeof v);
    WH_EXPECT(WHSEM_E_INCOMPATIBLE, OpenStatus(name, 1));
    EXPECT_NE(strstr(whsem_last_error(), "layout 99"), nullptr) << whsem_last_error();
}

// The dispatcher is the thread that finds the segment beyond use under
// pending operations; the message of that error still reaches whoever asks
// about them, on any thread, over an older message (since 1.1).
TEST(Corrupt, AsyncOperationsEndWithTheMessageOfTheirError)
{
    whsem_open_options o{};
    o.struct_size = sizeof o;
    o.abandonment_check_ms = WHSEM_INFINITE; // nothing wakes the dispatcher but us
    Sem sem(2, "asyncerr", &o);
    whsem_ticket t1, t2;
    WH_OK(whsem_acquire(sem.get(), 0, 0, &t1));
    WH_OK(whsem_acquire(sem.get(), 0, 0, &t2));
    whsem_op op, poker;
    WH_OK(whsem_acquire_async(sem.get(), WHSEM_INFINITE, 0, nullptr, nullptr, &op));
    WH_OK(whsem_acquire_async(sem.get(), WHSEM_INFINITE, 0, nullptr, nullptr, &poker));
    // A process dies inside the segment mutex, so its next owner recounts
    // the slots; ours (the first: we created the name) claims 100 tickets.
    Child dying({"fault", "attach", sem.name(), "2", "0"}, "whsem_win_helper_fi.exe");
    ASSERT_EQ(dying.Reap(), kKilled) << "the fault point attach did not fire";
    uint32_t held = 100;
    Poke(sem.name(), kSlotsOffset + kSlotHeldOffset, &held, sizeof held);
    auto unrelated = [] { WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_release(0)); };
    auto says_held = [] {
        EXPECT_NE(strstr(whsem_last_error(), "recorded as held"), nullptr) << whsem_last_error();
    };
    unrelated();
    WH_OK(whsem_op_cancel(poker)); // the dispatcher takes the mutex, and fails
    EXPECT_EQ(whsem_op_wait(op, 30000), WHSEM_E_CORRUPT);
    says_held();
    unrelated();
    EXPECT_EQ(whsem_op_poll(op), WHSEM_E_CORRUPT);
    says_held();
    unrelated();
    whsem_ticket t = 1;
    EXPECT_EQ(whsem_op_take_ticket(op, &t), WHSEM_E_CORRUPT);
    says_held();
    EXPECT_EQ(t, 0u);
    std::string elsewhere;
    std::thread([&] {
        whsem_op_poll(op);
        elsewhere = whsem_last_error();
    }).join();
    EXPECT_NE(elsewhere.find("recorded as held"), std::string::npos) << elsewhere;
    EXPECT_EQ(whsem_op_wait(poker, 30000), WHSEM_E_CORRUPT); // the error wins over the cancel
    says_held();
    WH_OK(whsem_op_free(op));
    WH_OK(whsem_op_free(poker));
    held = 2;
    Poke(sem.name(), kSlotsOffset + kSlotHeldOffset, &held, sizeof held);
    WH_OK(whsem_release(t1));
    WH_OK(whsem_release(t2));
}
