// SPDX-License-Identifier: MIT
// What other processes do to a name, carelessly or on purpose: fork and
// exec after acquiring, close descriptors they did not open, squat a name
// as another user, lock liveness bytes, forge the lock word, run in another
// time namespace, truncate the file. None of it may make a process wait
// past its timeout, crash it, or keep a dead holder's ticket away (issue
// 12). Linux only: it needs fork, users and namespaces.
#include "util.h"

#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>

using namespace whtest;

namespace {

using Clock = std::chrono::steady_clock;

constexpr int kSlots = 1024;
// seg_header.lock and the slots' pid fields (src/linux/layout.h).
constexpr size_t kHeaderSize = 4096, kSlotSize = 64, kSlotPidOffset = 24;

// Uids no process of the test runs as: an attacker and a victim.
constexpr uid_t kAttacker = 65534, kVictim = 65533;

// Becomes another user for good (in a forked child); false if not root.
bool BecomeUser(uid_t uid)
{
    return setgroups(0, nullptr) == 0 && setresgid(uid, uid, uid) == 0 && setresuid(uid, uid, uid) == 0;
}

#define REQUIRE_ROOT()                                                                      \
    do {                                                                                    \
        if (geteuid() != 0) GTEST_SKIP() << "needs root to act as several users";           \
    } while (0)

// A child that holds `n` tickets of a name until killed.
pid_t Holder(const std::string &name, int32_t max, int n, std::atomic<int> *ready,
             const whsem_open_options *opts = nullptr)
{
    return Spawn([=] {
        whsem_sem s;
        if (whtest_open(name.c_str(), max, opts, &s) != WHSEM_OK) return 1;
        for (int i = 0; i < n; i++) {
            whsem_ticket t;
            if (whsem_acquire(s, 0, 0, &t) != WHSEM_OK) return 2;
        }
        *ready = 1;
        for (;;) pause();
    });
}

// The process's own view of a segment file, mapped read-write.
struct Mapped {
    explicit Mapped(const std::string &name)
    {
        fd = open(SegmentPath(name).c_str(), O_RDWR);
        if (fd >= 0) p = (char *)mmap(nullptr, kHeaderSize + kSlots * kSlotSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    }
    ~Mapped()
    {
        if (p && p != MAP_FAILED) munmap(p, kHeaderSize + kSlots * kSlotSize);
        if (fd >= 0) close(fd);
    }
    bool ok() const { return p && p != MAP_FAILED; }
    std::atomic<uint32_t> *LockWord() const
    {
        // The lock word is the first field of the 64-aligned mutable part
        // that follows the immutable header (magic ... name[1024]).
        return reinterpret_cast<std::atomic<uint32_t> *>(p + 1088);
    }
    int SlotOf(pid_t pid) const
    {
        for (int i = 0; i < kSlots; i++)
            if (*(int32_t *)(p + kHeaderSize + i * kSlotSize + kSlotPidOffset) == pid) return i;
        return -1;
    }
    int fd = -1;
    char *p = nullptr;
};

bool WriteText(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return false;
    bool ok = write(fd, text, strlen(text)) == (ssize_t)strlen(text);
    return close(fd) == 0 && ok;
}

// The pid-reuse test's pid 1: a holder dies, another process takes its
// pid, and a waiter that polls never must get the holder's ticket.
// 0 when it does; 77-80: the namespaces cannot do what the test needs.
int PidReuseAsInit(const std::string &name)
{
    // Its own /proc, so that /proc/<pid> means the pids of its namespace.
    if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        mount("proc", "/proc", "proc", 0, nullptr) != 0)
        return 78;
    auto *step = SharedAlloc<std::atomic<int>>();
    pid_t holder = Spawn([&] {
        whsem_sem s;
        whsem_ticket t;
        if (whtest_open(name.c_str(), 1, nullptr, &s) != WHSEM_OK || whsem_acquire(s, 0, 0, &t) != WHSEM_OK)
            return 1;
        *step = 1; /* holding */
        for (;;) pause();
    });
    for (int i = 0; i < 1000 && !*step; i++) usleep(10000);
    if (!*step) return 10;
    // The waiter attaches now: a process that attaches after the holder
    // died would take its slot over, and its tickets with it.
    pid_t waiter = Spawn([&] {
        whsem_open_options o{};
        o.struct_size = sizeof o;
        o.abandonment_check_ms = WHSEM_INFINITE;
        whsem_sem s;
        whsem_ticket t;
        if (whtest_open(name.c_str(), 1, &o, &s) != WHSEM_OK) return 1;
        *step = 2;
        while (*step != 3) usleep(1000);
        whsem_status st = whsem_acquire(s, 10000, 0, &t);
        return st == WHSEM_OK ? 0 : st == WHSEM_TIMEOUT ? 2 : 3;
    });
    for (int i = 0; i < 1000 && *step != 2; i++) usleep(10000);
    if (*step != 2) return 11;
    kill(holder, SIGKILL);
    Reap(holder);
    // Past the clock tick the holder started in: pid and start time name
    // a process only if the start times differ.
    usleep(50000);
    char last[32];
    snprintf(last, sizeof last, "%d", (int)holder - 1);
    if (!WriteText("/proc/sys/kernel/ns_last_pid", last)) return 79;
    pid_t other = Spawn([]() -> int {
        for (;;) pause();
    });
    if (other != holder) {
        kill(other, SIGKILL);
        kill(waiter, SIGKILL);
        Reap(other);
        Reap(waiter);
        return 80;
    }
    *step = 3;
    int code = Reap(waiter);
    kill(other, SIGKILL);
    Reap(other);
    return code == 0 ? 0 : 20 + code;
}

} // namespace

// ---- what a holder leaves behind ----------------------------------------------

class AdversityFork : public ::testing::TestWithParam<bool> {};

// A holder forks a child that never touches the library and then dies: its
// ticket comes back while the child lives (the child inherits descriptors
// and the segment's mapping, which must not carry the parent's liveness).
TEST_P(AdversityFork, AChildDoesNotKeepADeadHoldersTicket)
{
    const bool raw = GetParam();
    // The holder maps the name itself (this process opens it only later):
    // a child then inherits the holder's own mapping and descriptors.
    std::string name = UniqueName("forkheld");
    auto *child_pid = SharedAlloc<std::atomic<pid_t>>();
    pid_t holder = Spawn([&] {
        whsem_sem s;
        whsem_ticket t;
        if (whtest_open(name.c_str(), 1, nullptr, &s) != WHSEM_OK) return 1;
        if (whsem_acquire(s, 0, 0, &t) != WHSEM_OK) return 2;
        *child_pid = ForkSleeper(raw);
        for (;;) pause();
    });
    ASSERT_TRUE(Eventually([&] { return child_pid->load() > 0; }));
    whsem_sem sem;
    WH_OK(whtest_open(name.c_str(), 1, nullptr, &sem));
    kill(holder, SIGKILL);
    Reap(holder);
    auto t0 = Clock::now();
    whsem_ticket t;
    WH_EXPECT(WHSEM_OK, whsem_acquire(sem, 5000, 0, &t));
    EXPECT_LT(SecondsSince(t0), 5.0);
    EXPECT_EQ(kill(child_pid->load(), 0), 0) << "the child must still live for this to mean anything";
    kill(child_pid->load(), SIGKILL);
    whsem_release(t);
    whsem_close(sem);
    whsem_unlink(name.c_str(), WHSEM_UNLINK_FORCE);
    SharedFree(child_pid);
}

INSTANTIATE_TEST_SUITE_P(ForkKinds, AdversityFork, ::testing::Values(false, true), ForkKindName);

// A holder that execs another program does not hold its tickets any more:
// the new image knows nothing of them.
TEST(Adversity, ExecAfterAcquireGivesTheTicketBack)
{
    Sem sem(1, "exec");
    auto *ready = SharedAlloc<std::atomic<int>>();
    pid_t holder = Spawn([&] {
        whsem_sem s;
        whsem_ticket t;
        if (whtest_open(sem.c_name(), 1, nullptr, &s) != WHSEM_OK) return 1;
        if (whsem_acquire(s, 0, 0, &t) != WHSEM_OK) return 2;
        *ready = 1;
        execl("/bin/sleep", "sleep", "60", (char *)nullptr);
        return 3;
    });
    ASSERT_TRUE(Eventually([&] { return ready->load() == 1; }));
    // Same pid, same start time: only the exec tells.
    ASSERT_TRUE(Eventually([&] {
        char buf[64] = "";
        std::string path = "/proc/" + std::to_string(holder) + "/comm";
        FILE *f = fopen(path.c_str(), "r");
        if (f) {
            if (!fgets(buf, sizeof buf, f)) buf[0] = 0;
            fclose(f);
        }
        return std::string(buf).rfind("sleep", 0) == 0;
    }));
    whsem_ticket t;
    WH_EXPECT(WHSEM_OK, whsem_acquire(sem.get(), 5000, 0, &t));
    kill(holder, SIGKILL);
    Reap(holder);
    whsem_release(t);
    SharedFree(ready);
}

// An application that closes every descriptor it did not open (closefrom)
// keeps its tickets, and the library never closes a descriptor number that
// the application has reused since.
TEST(Adversity, ClosefromNeitherLosesTicketsNorLetsCloseTouchReusedNumbers)
{
    // The application makes the only mapping of the name in its process
    // (this process opens it later), so that closing the handle unmaps it.
    std::string name = UniqueName("closefrom");
    auto *step = SharedAlloc<std::atomic<int>>();
    pid_t app = Spawn([&] {
        whsem_sem s;
        whsem_ticket t;
        if (whtest_open(name.c_str(), 1, nullptr, &s) != WHSEM_OK) return 1;
        if (whsem_acquire(s, 0, 0, &t) != WHSEM_OK) return 2;
        for (int fd = 3; fd < 4096; fd++) close(fd);
        int mine[256];
        for (int &fd : mine) fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        *step = 1;
        while (*step != 2) usleep(1000);
        if (whsem_release(t) != WHSEM_OK) return 3;
        if (whsem_close(s) != WHSEM_OK) return 4;
        struct stat null_st;
        stat("/dev/null", &null_st);
        for (int fd : mine) {
            struct stat st;
            if (fstat(fd, &st) != 0 || st.st_rdev != null_st.st_rdev) return 5;
        }
        return 0;
    });
    ASSERT_TRUE(Eventually([&] { return step->load() == 1; }));
    whsem_sem sem;
    WH_OK(whtest_open(name.c_str(), 1, nullptr, &sem));
    whsem_ticket t;
    size_t n;
    WH_OK(whsem_query(sem, nullptr, nullptr, 0, &n)); // a full look for the dead
    WH_EXPECT(WHSEM_TIMEOUT, whsem_acquire(sem, 300, 0, &t)); // it is alive: it holds
    *step = 2;
    EXPECT_EQ(Reap(app), 0) << "the library closed or lost a descriptor of the application's";
    WH_EXPECT(WHSEM_OK, whsem_acquire(sem, 5000, 0, &t));
    whsem_release(t);
    whsem_close(sem);
    whsem_unlink(name.c_str(), WHSEM_UNLINK_FORCE);
    SharedFree(step);
}

// ---- other users -------------------------------------------------------------------

// Another user pre-creates a valid segment under a victim's name, writable
// by all: the victim, asking for the default (owner-only) mode, must refuse
// it instead of trusting a file the attacker controls.
TEST(Adversity, ANameSquattedByAnotherUserIsRefused)
{
    REQUIRE_ROOT();
    std::string name = UniqueName("squat");
    pid_t attacker = Spawn([&] {
        if (!BecomeUser(kAttacker)) return 1;
        whsem_open_options o{};
        o.struct_size = sizeof o;
        o.mode = 0666;
        whsem_sem s;
        if (whtest_open(name.c_str(), 2, &o, &s) != WHSEM_OK) return 2;
        return 0; // the file stays behind
    });
    ASSERT_EQ(Reap(attacker), 0);
    pid_t victim = Spawn([&] {
        if (!BecomeUser(kVictim)) return 1;
        whsem_sem s;
        whsem_status st = whtest_open(name.c_str(), 2, nullptr, &s);
        if (st != WHSEM_E_ACCESS_DENIED) return 2;
        if (!strstr(whsem_last_error(), "65534")) return 3; // names the owner
        // Another max count: the same refusal, not a misleading mismatch.
        if (whtest_open(name.c_str(), 7, nullptr, &s) != WHSEM_E_ACCESS_DENIED) return 4;
        // Sharing on purpose: a mode that lets others write accepts it.
        whsem_open_options o{};
        o.struct_size = sizeof o;
        o.mode = 0666;
        if (whtest_open(name.c_str(), 2, &o, &s) != WHSEM_OK) return 5;
        return 0;
    });
    EXPECT_EQ(Reap(victim), 0);
    whsem_unlink(name.c_str(), WHSEM_UNLINK_FORCE);
}

// A mode given explicitly is a promise: a segment with a wider mode (even
// of the caller's own making) is refused; the default mode accepts it.
TEST(Adversity, AnExplicitModeRefusesAWiderSegment)
{
    whsem_open_options wide{};
    wide.struct_size = sizeof wide;
    wide.mode = 0666;
    Sem sem(2, "wider", &wide);
    whsem_open_options narrow{};
    narrow.struct_size = sizeof narrow;
    narrow.mode = 0600;
    whsem_sem s;
    WH_EXPECT(WHSEM_E_ACCESS_DENIED, whtest_open(sem.c_name(), 2, &narrow, &s));
    EXPECT_NE(std::string(whsem_last_error()).find("0666"), std::string::npos) << whsem_last_error();
    WH_OK(whtest_open(sem.c_name(), 2, nullptr, &s));
    whsem_close(s);
}

// A user who can only read the file locks every liveness byte: others can
// still open the name.
TEST(Adversity, AReadOnlyUserLockingLivenessBytesCannotBlockOpen)
{
    REQUIRE_ROOT();
    whsem_open_options o{};
    o.struct_size = sizeof o;
    o.mode = 0644;
    Sem sem(2, "rdlock", &o);
    auto *ready = SharedAlloc<std::atomic<int>>();
    pid_t attacker = Spawn([&] {
        if (!BecomeUser(kAttacker)) return 1;
        if (!ReadLockLivenessBytes(SegmentPath(sem.name()))) return 2;
        *ready = 1;
        for (;;) pause();
    });
    ASSERT_TRUE(Eventually([&] { return ready->load() == 1; }));
    pid_t opener = Spawn([&] {
        whsem_sem s;
        whsem_ticket t;
        if (whtest_open(sem.c_name(), 2, &o, &s) != WHSEM_OK) return 1;
        return whsem_acquire(s, 0, 0, &t) == WHSEM_OK ? 0 : 2;
    });
    EXPECT_EQ(Reap(opener), 0) << "a read lock of another user's must not take the slots away";
    kill(attacker, SIGKILL);
    Reap(attacker);
    SharedFree(ready);
}

// Someone holds a dead holder's liveness byte (any process that can read
// the file can lock it): the holder is dead all the same.
TEST(Adversity, ALockedByteDoesNotKeepADeadHolderAlive)
{
    Sem sem(1, "deadbyte");
    auto *ready = SharedAlloc<std::atomic<int>>();
    pid_t holder = Holder(sem.name(), 1, 1, ready);
    ASSERT_TRUE(Eventually([&] { return ready->load() == 1; }));
    *ready = 0;
    pid_t locker = Spawn([&] {
        if (!ReadLockLivenessBytes(SegmentPath(sem.name()))) return 1;
        *ready = 1;
        for (;;) pause();
    });
    ASSERT_TRUE(Eventually([&] { return ready->load() == 1; }));
    kill(holder, SIGKILL);
    Reap(holder);
    whsem_ticket t;
    WH_EXPECT(WHSEM_OK, whsem_acquire(sem.get(), 5000, 0, &t));
    whsem_release(t);
    kill(locker, SIGKILL);
    Reap(locker);
    SharedFree(ready);
}

// A lock word forged to name a live process: calls with timeouts return
// on time, and everything works again once the word is repaired.
TEST(Adversity, AForgedLockWordCannotOutlastTimeouts)
{
    Sem sem(1, "forged");
    auto *ready = SharedAlloc<std::atomic<int>>();
    pid_t holder = Holder(sem.name(), 1, 1, ready);
    ASSERT_TRUE(Eventually([&] { return ready->load() == 1; }));
    // A waiter registers first; it will end while the word is forged.
    std::atomic<int> waited{-100};
    std::thread waiter([&] {
        whsem_ticket t;
        waited = whsem_acquire(sem.get(), 1000, 0, &t);
    });
    ASSERT_TRUE(Eventually([&] { return Info(sem.get()).waiters == 1; }));
    Mapped seg(sem.name());
    ASSERT_TRUE(seg.ok());
    int slot = seg.SlotOf(holder);
    ASSERT_GE(slot, 0);
    uint32_t zero = 0;
    ASSERT_TRUE(seg.LockWord()->compare_exchange_strong(zero, (uint32_t)slot + 1));

    auto t0 = Clock::now();
    whsem_ticket t;
    WH_EXPECT(WHSEM_TIMEOUT, whsem_acquire(sem.get(), 0, 0, &t));
    EXPECT_LT(SecondsSince(t0), 2.0);
    t0 = Clock::now();
    WH_EXPECT(WHSEM_TIMEOUT, whsem_acquire(sem.get(), 200, 0, &t));
    EXPECT_LT(SecondsSince(t0), 3.0);
    whsem_op op;
    WH_OK(whsem_acquire_async(sem.get(), 200, 0, nullptr, nullptr, &op));
    WH_EXPECT(WHSEM_TIMEOUT, whsem_op_wait(op, 10000));
    whsem_op_free(op);
    size_t n;
    t0 = Clock::now();
    WH_EXPECT(WHSEM_E_BUSY, whsem_query(sem.get(), nullptr, nullptr, 0, &n));
    EXPECT_LT(SecondsSince(t0), 5.0);
    waiter.join();
    EXPECT_EQ(waited.load(), WHSEM_TIMEOUT);

    seg.LockWord()->store(0);
    kill(holder, SIGKILL);
    Reap(holder);
    WH_EXPECT(WHSEM_OK, whsem_acquire(sem.get(), 5000, 0, &t));
    WH_OK(whsem_release(t));
    EXPECT_TRUE(Eventually([&] {
        whsem_info i = Info(sem.get());
        return i.waiters == 0 && i.free_count == 1;
    }));
    SharedFree(ready);
}

// Another user truncates a segment everyone may write (mode 0666): the
// processes using it get WHSEM_E_CORRUPT, never SIGBUS.
TEST(Adversity, TruncationByAnotherUserIsAnErrorNotACrash)
{
    REQUIRE_ROOT();
    whsem_open_options o{};
    o.struct_size = sizeof o;
    o.mode = 0666;
    Sem sem(2, "truncate", &o);
    whsem_ticket held;
    WH_OK(whsem_acquire(sem.get(), 0, 0, &held));
    pid_t attacker = Spawn([&] {
        if (!BecomeUser(kAttacker)) return 1;
        return truncate(SegmentPath(sem.name()).c_str(), 0) == 0 ? 0 : 2;
    });
    ASSERT_EQ(Reap(attacker), 0);
    whsem_ticket t;
    WH_EXPECT(WHSEM_E_CORRUPT, whsem_acquire(sem.get(), 0, 0, &t));
    WH_EXPECT(WHSEM_E_CORRUPT, whsem_acquire(sem.get(), 100, 0, &t));
    size_t n;
    WH_EXPECT(WHSEM_E_CORRUPT, whsem_query(sem.get(), nullptr, nullptr, 0, &n));
    whsem_release(held); // an error or OK, but no crash
    // The name is usable again once the broken file is removed.
    whsem_unlink(sem.c_name(), WHSEM_UNLINK_FORCE);
    whsem_sem s;
    WH_OK(whtest_open(sem.c_name(), 2, &o, &s));
    WH_OK(whsem_acquire(s, 0, 0, &t));
    WH_OK(whsem_release(t));
    whsem_close(s);
}

// ---- pid reuse ----------------------------------------------------------------------

// A waiting process watches the holders' processes (src/watches.c), and a
// watch must name the process, not its pid: a holder that died and whose
// pid another process took since is found dead at once, not when that
// other process ends (the waiter never polls: only the watch can tell).
// In user, pid and mount namespaces of the test's own, where the next pid
// can be chosen.
TEST(Adversity, AReusedPidIsNotTakenForADeadHolder)
{
    Sem sem(1, "pidreuse");
    uid_t uid = geteuid();
    gid_t gid = getegid();
    std::string name = sem.name();
    pid_t outer = Spawn([&] {
        if (unshare(CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS) != 0) return 77;
        char uid_map[64], gid_map[64];
        snprintf(uid_map, sizeof uid_map, "0 %d 1", (int)uid);
        snprintf(gid_map, sizeof gid_map, "0 %d 1", (int)gid);
        if (!WriteText("/proc/self/setgroups", "deny") || !WriteText("/proc/self/gid_map", gid_map) ||
            !WriteText("/proc/self/uid_map", uid_map))
            return 77;
        pid_t init = fork(); // pid 1 of the new namespace
        if (init == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            _exit(PidReuseAsInit(name));
        }
        return init < 0 ? 77 : Reap(init);
    });
    int code = Reap(outer);
    if (code >= 77 && code <= 80) GTEST_SKIP() << "these namespaces cannot reuse a pid on demand (" << code << ")";
    EXPECT_EQ(code, 0) << "22: the waiter timed out; other codes: see PidReuseAsInit";
}

// ---- clocks -------------------------------------------------------------------------

// A process in a time namespace whose clocks run 10^6 s ahead stamps shared
// times from its clock: nobody may wait for those times to come.
TEST(Adversity, AProcessInAnotherTimeNamespaceStallsNobody)
{
    REQUIRE_ROOT();
    Sem sem(1, "timens");
    auto *step = SharedAlloc<std::atomic<int>>();
    // The future process holds the only ticket, and on cue looks for dead
    // holders, stamping the time of that look from its clock.
    pid_t outer = Spawn([&] {
        if (unshare(CLONE_NEWTIME) != 0) return 77;
        FILE *f = fopen("/proc/self/timens_offsets", "w");
        if (!f) return 78;
        fprintf(f, "monotonic 1000000 0\nboottime 1000000 0\n");
        if (fclose(f) != 0) return 78;
        pid_t inner = Spawn([&] { // children enter the new namespace
            whsem_sem s;
            whsem_ticket t;
            size_t n;
            if (whtest_open(sem.c_name(), 1, nullptr, &s) != WHSEM_OK) return 1;
            if (whsem_acquire(s, 0, 0, &t) != WHSEM_OK) return 3;
            *step = 1;
            while (*step != 2) usleep(1000);
            if (whsem_query(s, nullptr, nullptr, 0, &n) != WHSEM_OK) return 2;
            *step = 3;
            for (;;) pause();
        });
        return Reap(inner);
    });
    if (!Eventually([&] { return step->load() == 1; }, 10)) {
        int code = Reap(outer);
        if (code == 77 || code == 78) GTEST_SKIP() << "no time namespaces here (" << code << ")";
        FAIL() << "the process in the time namespace failed: " << code;
    }
    // Its start time reads differently from here: it must still count as
    // alive (a wrong "dead" would over-admit).
    whsem_ticket t;
    size_t n;
    WH_OK(whsem_query(sem.get(), nullptr, nullptr, 0, &n));
    WH_EXPECT(WHSEM_TIMEOUT, whsem_acquire(sem.get(), 300, 0, &t));
    // Its death is noticed by a waiter although the last look for dead
    // holders is stamped 10^6 s "later" than now.
    *step = 2;
    ASSERT_TRUE(Eventually([&] { return step->load() == 3; }));
    std::atomic<int> got{-100};
    std::thread waiter([&] {
        whsem_ticket x;
        got = whsem_acquire(sem.get(), 10000, 0, &x);
        if (got == WHSEM_OK) whsem_release(x);
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    auto t0 = Clock::now();
    kill(outer, SIGKILL); // its child dies with it (PR_SET_PDEATHSIG)
    Reap(outer);
    waiter.join();
    EXPECT_EQ(got.load(), WHSEM_OK);
    EXPECT_LT(SecondsSince(t0), 10.0);
    SharedFree(step);
}
