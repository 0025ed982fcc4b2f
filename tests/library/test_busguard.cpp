// SPDX-License-Identifier: MIT
// The bus guard (src/linux/busguard.c) against real truncations: a truncated
// registered mapping must leave the process alive, its flag set and the
// range reading zeros, and every SIGBUS that is not ours must reach the
// disposition that was there before, as the kernel would have delivered it.
//
// Which handler was installed before the guard's first registration matters,
// so those tests run in death-test children (re-executed, so nothing of the
// parent's guard is inherited) and report by exit code.
#include "busguard_shim.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

namespace {

constexpr size_t kLen = 64 * 1024;
const size_t kPage = (size_t)sysconf(_SC_PAGESIZE);

// Setup failures abort: in a death-test child an assertion would not end it.
void Check(bool ok)
{
    if (!ok) abort();
}

// A shared mapping of a file in /dev/shm, plus a second open file
// description of it standing in for the other user who truncates it. The
// name is unlinked at once, so nothing is left behind even by a crash.
class Mapping {
public:
    explicit Mapping(size_t len = kLen) : len_(len)
    {
        char path[] = "/dev/shm/whsem-busguard-test.XXXXXX";
        fd_ = mkstemp(path);
        Check(fd_ >= 0);
        other_ = open(path, O_RDWR | O_CLOEXEC);
        unlink(path);
        Check(other_ >= 0 && ftruncate(fd_, (off_t)len) == 0);
        void *p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
        Check(p != MAP_FAILED);
        base_ = static_cast<char *>(p);
        memset(base_, 0xA5, len);
    }
    ~Mapping()
    {
        bgt_remove(base_);
        munmap(base_, len_);
        close(fd_);
        close(other_);
    }
    Mapping(const Mapping &) = delete;
    Mapping &operator=(const Mapping &) = delete;

    char *base() const { return base_; }
    size_t len() const { return len_; }
    int fd() const { return fd_; }
    void Truncate(off_t size) const { Check(ftruncate(other_, size) == 0); }
    off_t FileSize() const
    {
        struct stat st;
        Check(fstat(fd_, &st) == 0);
        return st.st_size;
    }

private:
    size_t len_;
    int fd_ = -1, other_ = -1;
    char *base_ = nullptr;
};

// Accesses the compiler may neither drop nor merge.
char Read(const char *p)
{
    return *static_cast<const volatile char *>(p);
}
void Write(char *p, char v)
{
    *static_cast<volatile char *>(p) = v;
}

bool AllZero(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] != 0) return false;
    return true;
}

} // namespace

TEST(BusGuard, TruncatedRangeReadsZerosAndIsMarkedBroken)
{
    Mapping m;
    ASSERT_EQ(bgt_add(m.base(), m.len(), 0), 0);
    EXPECT_FALSE(bgt_broken(0));
    Write(m.base() + 10, 42);
    EXPECT_EQ(Read(m.base() + 10), 42);

    m.Truncate(0);
    EXPECT_EQ(Read(m.base() + 40000), 0); // faults, is repaired, is retried
    EXPECT_TRUE(bgt_broken(0));
    EXPECT_TRUE(AllZero(m.base(), m.len()));

    // The replacement is ordinary private memory: writes stick, and none
    // reaches the file.
    Write(m.base() + 7, 9);
    EXPECT_EQ(Read(m.base() + 7), 9);
    EXPECT_EQ(m.FileSize(), 0);
}

TEST(BusGuard, WriteFaultIsRepairedToo)
{
    Mapping m;
    ASSERT_EQ(bgt_add(m.base(), m.len(), 0), 0);
    m.Truncate(0);
    Write(m.base() + 5000, 3);
    EXPECT_TRUE(bgt_broken(0));
    EXPECT_EQ(Read(m.base() + 5000), 3);
    EXPECT_EQ(Read(m.base() + 5001), 0);
}

TEST(BusGuard, PartialTruncationZeroesTheWholeRange)
{
    Mapping m;
    ASSERT_EQ(bgt_add(m.base(), m.len(), 0), 0);
    m.Truncate((off_t)kPage);
    // The page the file still holds does not fault...
    EXPECT_EQ(Read(m.base() + 1), (char)0xA5);
    EXPECT_FALSE(bgt_broken(0));
    // ...but once any page has, the segment is dead, all of it.
    EXPECT_EQ(Read(m.base() + 5 * kPage), 0);
    EXPECT_TRUE(bgt_broken(0));
    EXPECT_EQ(Read(m.base() + 1), 0);
}

TEST(BusGuard, ThreadsFaultingTogetherAllSurvive)
{
    constexpr int kThreads = 4;
    Mapping m(kThreads * 4 * kPage);
    ASSERT_EQ(bgt_add(m.base(), m.len(), 0), 0);
    m.Truncate(0);
    std::atomic<int> ready{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; t++) {
        threads.emplace_back([&, t] {
            char *mine = m.base() + (size_t)t * 4 * kPage;
            ready.fetch_add(1);
            while (ready.load() < kThreads) {
            }
            Read(mine + 3 * kPage);
            // Written after this thread's own repair: a second replacement
            // of the range by a later-faulting thread would wipe it.
            Write(mine, (char)(t + 1));
        });
    }
    for (auto &t : threads) t.join();
    EXPECT_TRUE(bgt_broken(0));
    for (int t = 0; t < kThreads; t++) EXPECT_EQ(Read(m.base() + (size_t)t * 4 * kPage), t + 1);
}

// Far more ranges than one chunk of the registry holds, entries recycled,
// and a truncated range found among them.
TEST(BusGuard, ThousandsOfRanges)
{
    constexpr size_t kRanges = 3000;
    void *r = mmap(nullptr, kRanges * kPage, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(r, MAP_FAILED);
    char *fake = static_cast<char *>(r);
    for (size_t i = 0; i < kRanges; i++) ASSERT_EQ(bgt_add(fake + i * kPage, kPage, (unsigned)i), 0);
    for (size_t i = 0; i < 100; i++) bgt_remove(fake + i * kPage);
    for (size_t i = 0; i < 100; i++) ASSERT_EQ(bgt_add(fake + i * kPage, kPage, (unsigned)i), 0);

    Mapping m;
    ASSERT_EQ(bgt_add(m.base(), m.len(), (unsigned)kRanges), 0);
    m.Truncate(0);
    EXPECT_EQ(Read(m.base() + 12345), 0);
    EXPECT_TRUE(bgt_broken((unsigned)kRanges));
    for (size_t i = 0; i < kRanges; i++) EXPECT_FALSE(bgt_broken((unsigned)i)) << i;

    for (size_t i = 0; i < kRanges; i++) bgt_remove(fake + i * kPage);
    munmap(r, kRanges * kPage);
}

TEST(BusGuard, BadArgumentsAreRefused)
{
    Mapping m;
    EXPECT_NE(bgt_add(nullptr, kPage, 0), 0);
    EXPECT_NE(bgt_add(m.base(), 0, 0), 0);
    EXPECT_NE(bgt_add(m.base() + 1, kPage, 0), 0);
    bgt_remove(m.base()); // not registered: ignored
}

// ---- What happens to SIGBUS that is not ours -------------------------------

namespace {

sigjmp_buf g_jump;
std::atomic<int> g_calls{0};
std::atomic<int> g_sig{0};
std::atomic<int> g_code{0};
std::atomic<uintptr_t> g_addr{0};
std::atomic<bool> g_bus_blocked{false}, g_usr1_blocked{false}, g_usr2_blocked{false};

void RecordMask()
{
    sigset_t cur;
    pthread_sigmask(SIG_SETMASK, nullptr, &cur);
    g_bus_blocked = sigismember(&cur, SIGBUS) == 1;
    g_usr1_blocked = sigismember(&cur, SIGUSR1) == 1;
    g_usr2_blocked = sigismember(&cur, SIGUSR2) == 1;
}

// The application's own handler: a fault cannot be returned from, so it
// jumps out, as a real one would (or fixes the cause).
void AppSiginfoHandler(int sig, siginfo_t *info, void *)
{
    g_calls++;
    g_sig = sig;
    g_code = info->si_code;
    g_addr = (uintptr_t)info->si_addr;
    RecordMask();
    if (info->si_code > 0) siglongjmp(g_jump, 1);
}

void AppPlainHandler(int sig)
{
    g_calls++;
    g_sig = sig;
    RecordMask();
    siglongjmp(g_jump, 1);
}

// sa_mask holds SIGUSR1 (and not SIGUSR2): the guard blocks every signal
// while it runs, and must give the application's handler its own mask.
void InstallApp(bool siginfo, int flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    if (siginfo)
        sa.sa_sigaction = AppSiginfoHandler;
    else
        sa.sa_handler = AppPlainHandler;
    sa.sa_flags = flags | (siginfo ? SA_SIGINFO : 0);
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGUSR1);
    Check(sigaction(SIGBUS, &sa, nullptr) == 0);
}

void SetDisposition(void (*h)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = h;
    sigemptyset(&sa.sa_mask);
    Check(sigaction(SIGBUS, &sa, nullptr) == 0);
    // A death by SIGBUS must not leave a core file behind.
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
}

// Touches a truncated mapping nobody registered. Returns true if an
// application handler jumped out of the fault.
bool ForeignFault(const Mapping &foreign, size_t offset)
{
    foreign.Truncate(0);
    if (sigsetjmp(g_jump, 1) == 0) {
        Read(foreign.base() + offset);
        return false;
    }
    return true;
}

int ForeignFaultReachesAnEarlierHandler()
{
    InstallApp(true, 0);
    Mapping guarded, foreign;
    Check(bgt_add(guarded.base(), guarded.len(), 0) == 0);

    if (!ForeignFault(foreign, 100)) return 10;
    if (g_calls != 1 || g_sig != SIGBUS || g_code != BUS_ADRERR) return 11;
    if (g_addr != (uintptr_t)(foreign.base() + 100)) return 12;
    // The mask the kernel would have given it: SIGBUS (no SA_NODEFER) and
    // its sa_mask, nothing more.
    if (!g_bus_blocked || !g_usr1_blocked || g_usr2_blocked) return 13;
    if (bgt_broken(0) || Read(guarded.base()) != (char)0xA5) return 14;
    // sigsetjmp(.., 1) restored the mask from before the fault.
    sigset_t cur;
    pthread_sigmask(SIG_SETMASK, nullptr, &cur);
    if (sigismember(&cur, SIGBUS) || sigismember(&cur, SIGUSR1)) return 15;

    // The guarded range still works with the application's handler behind.
    guarded.Truncate(0);
    if (Read(guarded.base() + 9000) != 0 || !bgt_broken(0) || g_calls != 1) return 16;
    return 0;
}

int PlainNodeferHandlerIsCalledAsInstalled()
{
    InstallApp(false, SA_NODEFER);
    Mapping guarded, foreign;
    Check(bgt_add(guarded.base(), guarded.len(), 0) == 0);
    if (!ForeignFault(foreign, 0)) return 10;
    if (g_calls != 1 || g_sig != SIGBUS) return 11;
    if (g_bus_blocked || !g_usr1_blocked || g_usr2_blocked) return 13;
    return 0;
}

int RemovedRangeIsNotGuarded()
{
    InstallApp(true, 0);
    Mapping m;
    Check(bgt_add(m.base(), m.len(), 0) == 0);
    bgt_remove(m.base());
    if (!ForeignFault(m, 64)) return 10;
    if (g_calls != 1 || g_addr != (uintptr_t)(m.base() + 64)) return 11;
    if (bgt_broken(0)) return 12;
    return 0;
}

// A SIGBUS sent by a process carries no fault address (si_addr overlays
// the sender's pid and uid): one that happens to point into a registered
// range must still go to the application, and break nothing.
int QueuedSigbusIsNotTakenForAFault()
{
    InstallApp(true, 0);
    Mapping m;
    Check(bgt_add(m.base(), m.len(), 0) == 0);
    siginfo_t info;
    memset(&info, 0, sizeof info);
    info.si_signo = SIGBUS;
    info.si_code = SI_QUEUE;
    info.si_addr = m.base() + 8;
    Check(syscall(SYS_rt_tgsigqueueinfo, getpid(), syscall(SYS_gettid), SIGBUS, &info) == 0);
    // Delivered before the system call returned; the handler returned.
    if (g_calls != 1 || g_code != SI_QUEUE) return 10;
    if (bgt_broken(0) || Read(m.base() + 8) != (char)0xA5) return 11;
    return 0;
}

int ForeignFaultWithDefault()
{
    SetDisposition(SIG_DFL);
    Mapping guarded, foreign;
    Check(bgt_add(guarded.base(), guarded.len(), 0) == 0);
    ForeignFault(foreign, 0);
    return 10; // survived
}

int KillWithDefault()
{
    SetDisposition(SIG_DFL);
    Mapping guarded;
    Check(bgt_add(guarded.base(), guarded.len(), 0) == 0);
    kill(getpid(), SIGBUS);
    return 10;
}

int KillWhileIgnored()
{
    SetDisposition(SIG_IGN);
    Mapping guarded;
    Check(bgt_add(guarded.base(), guarded.len(), 0) == 0);
    kill(getpid(), SIGBUS);
    raise(SIGBUS);
    // Ignored, as without the guard; and the guard still works.
    guarded.Truncate(0);
    if (Read(guarded.base()) != 0 || !bgt_broken(0)) return 10;
    return 0;
}

int ForeignFaultWhileIgnored()
{
    SetDisposition(SIG_IGN);
    Mapping guarded, foreign;
    Check(bgt_add(guarded.base(), guarded.len(), 0) == 0);
    ForeignFault(foreign, 0); // a fault cannot be ignored
    return 10;
}

int ResetHandHandlerRunsOnce()
{
    InstallApp(true, SA_RESETHAND);
    Mapping guarded, first, second;
    Check(bgt_add(guarded.base(), guarded.len(), 0) == 0);
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    if (!ForeignFault(first, 0) || g_calls != 1) return 10;
    ForeignFault(second, 0); // its handler is gone: the default action
    return 11;
}

// Breaks the contract (a registered range unmapped without being removed,
// its address reused by another file mapping that is then truncated): the
// guard has already replaced the range once, and must not have the access
// fault and retry forever.
int ReusedRangeFaultsOnceMore()
{
    SetDisposition(SIG_DFL);
    Mapping first, second;
    Check(bgt_add(first.base(), first.len(), 0) == 0);
    first.Truncate(0);
    Check(Read(first.base()) == 0 && bgt_broken(0));
    // The second file where the first range was, behind the guard's back.
    void *p = mmap(first.base(), first.len(), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
                   second.fd(), 0);
    Check(p == first.base());
    second.Truncate(0);
    Read(first.base() + 1); // the default action, not a loop
    return 10;
}

bool CanProbeOwnMemory()
{
    char src = 1, dst = 0;
    struct iovec local = {&dst, 1}, remote = {&src, 1};
    return syscall(SYS_process_vm_readv, getpid(), &local, 1UL, &remote, 1UL, 0UL) == 1;
}

} // namespace

class BusGuardChain : public ::testing::Test {
protected:
    void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

TEST_F(BusGuardChain, ForeignFaultReachesAnEarlierHandler)
{
    EXPECT_EXIT(exit(ForeignFaultReachesAnEarlierHandler()), ::testing::ExitedWithCode(0), "");
}

TEST_F(BusGuardChain, PlainNodeferHandlerIsCalledAsInstalled)
{
    EXPECT_EXIT(exit(PlainNodeferHandlerIsCalledAsInstalled()), ::testing::ExitedWithCode(0), "");
}

TEST_F(BusGuardChain, RemovedRangeIsNotGuarded)
{
    EXPECT_EXIT(exit(RemovedRangeIsNotGuarded()), ::testing::ExitedWithCode(0), "");
}

TEST_F(BusGuardChain, QueuedSigbusIsNotTakenForAFault)
{
    EXPECT_EXIT(exit(QueuedSigbusIsNotTakenForAFault()), ::testing::ExitedWithCode(0), "");
}

TEST_F(BusGuardChain, ForeignFaultStillKillsWithTheDefaultAction)
{
    EXPECT_EXIT(exit(ForeignFaultWithDefault()), ::testing::KilledBySignal(SIGBUS), "");
}

TEST_F(BusGuardChain, KillStillKillsWithTheDefaultAction)
{
    EXPECT_EXIT(exit(KillWithDefault()), ::testing::KilledBySignal(SIGBUS), "");
}

TEST_F(BusGuardChain, IgnoredSigbusFromKillStaysIgnored)
{
    EXPECT_EXIT(exit(KillWhileIgnored()), ::testing::ExitedWithCode(0), "");
}

TEST_F(BusGuardChain, IgnoredDispositionDoesNotSaveAForeignFault)
{
    EXPECT_EXIT(exit(ForeignFaultWhileIgnored()), ::testing::KilledBySignal(SIGBUS), "");
}

TEST_F(BusGuardChain, ResetHandHandlerRunsOnce)
{
    EXPECT_EXIT(exit(ResetHandHandlerRunsOnce()), ::testing::KilledBySignal(SIGBUS), "");
}

TEST_F(BusGuardChain, ReusedRangeIsNotRetriedForever)
{
    if (!CanProbeOwnMemory()) GTEST_SKIP() << "process_vm_readv is not allowed here";
    EXPECT_EXIT(exit(ReusedRangeFaultsOnceMore()), ::testing::KilledBySignal(SIGBUS), "");
}
