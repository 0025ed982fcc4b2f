// SPDX-License-Identifier: MIT
// Helpers shared by the googletest suites of both platforms. Where Linux
// and Windows differ (another process, what a name leaves behind, thread
// and memory counts, a queue's waitable object), the difference is here,
// behind one name, so that the tests themselves read the same.
#pragma once

#include "whsem.h"

#include "backend_under_test.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#ifdef _WIN32
#include <windows.h>

#include <psapi.h>
#include <tlhelp32.h>
#else
#include "commands.h"

#include <cerrno>
#include <cstring>
#include <fstream>

#include <dirent.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#endif

namespace whtest {

#ifdef _WIN32
constexpr bool kWindows = true;
#else
constexpr bool kWindows = false;
#endif

// Whether the semaphores live in this machine's shared memory, or on the
// backend WHSEM_TEST_BACKEND names (backend_under_test.h).
inline bool OnSharedMemory() { return whtest_backend() == nullptr; }

// What unlinking the name of a semaphore nobody has open any more returns:
// on Linux its segment file stays until it is unlinked; on Windows its
// objects went with the last handle, and the name with them. whsem_unlink
// knows this machine's names only: a PostgreSQL semaphore is not one.
inline whsem_status UnlinkUnused()
{
    return kWindows || !OnSharedMemory() ? WHSEM_E_NOT_FOUND : WHSEM_OK;
}

inline long CurrentPid()
{
#ifdef _WIN32
    return (long)GetCurrentProcessId();
#else
    return (long)getpid();
#endif
}

// A name no other test (or earlier run) uses: tests run in parallel,
// segments outlive crashed test processes on Linux, and names are shared
// by every process of the Wine prefix.
inline std::string UniqueName(const char *what)
{
    static std::atomic<int> counter{0};
    return std::string("whsem-test-") + what + "-" + std::to_string(CurrentPid()) + "-" +
           std::to_string(counter++) + "-" +
           std::to_string(std::chrono::steady_clock::now().time_since_epoch().count() % 1000000);
}

// Where the segment of a plain ASCII test name lives (see names.c for the
// encoding): a file on Linux, a section (of generation 0) on Windows.
inline std::string SegmentPath(const std::string &name)
{
    return (kWindows ? "Global\\whsem." : "/dev/shm/whsem.") + name;
}

#define WH_OK(expr)                                                                         \
    do {                                                                                    \
        whsem_status st_ = (expr);                                                          \
        ASSERT_EQ(st_, WHSEM_OK) << #expr << " -> " << whsem_status_name(st_) << ": "       \
                                 << whsem_last_error();                                     \
    } while (0)

#define WH_EXPECT(expected, expr)                                                           \
    do {                                                                                    \
        whsem_status st_ = (expr);                                                          \
        EXPECT_EQ(st_, expected) << #expr << " -> " << whsem_status_name(st_) << ": "       \
                                 << whsem_last_error();                                     \
    } while (0)

// Open options with an abandonment check every ms (dead holders' tickets
// come back that soon).
inline whsem_open_options CheckingEvery(int32_t ms)
{
    whsem_open_options o{};
    o.struct_size = sizeof o;
    o.abandonment_check_ms = ms;
    return o;
}

// Opens a fresh semaphore and removes its name when the test ends.
class Sem {
  public:
    Sem(int32_t max, const char *what = "sem", const whsem_open_options *opts = nullptr)
        : name_(UniqueName(what))
    {
        whsem_status st = whtest_open(name_.c_str(), max, opts, &sem_);
        if (st != WHSEM_OK) {
            ADD_FAILURE() << "whsem_open: " << whsem_status_name(st) << ": " << whsem_last_error();
            sem_ = 0;
        }
    }
    ~Sem()
    {
        if (sem_) whsem_close(sem_);
        whsem_unlink(name_.c_str(), WHSEM_UNLINK_FORCE);
    }
    Sem(const Sem &) = delete;
    Sem &operator=(const Sem &) = delete;
    whsem_sem get() const { return sem_; }
    const std::string &name() const { return name_; }
    const char *c_name() const { return name_.c_str(); }
    void forget() { sem_ = 0; }

  private:
    std::string name_;
    whsem_sem sem_ = 0;
};

inline double SecondsSince(std::chrono::steady_clock::time_point t0)
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Polls cond for up to `seconds`, generous on purpose: the machine is noisy,
// Wine is slow to start processes, and tests must not depend on timing.
inline bool Eventually(const std::function<bool()> &cond, double seconds = kWindows ? 30 : 20)
{
    auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < end) {
        if (cond()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return cond();
}

inline whsem_info Info(whsem_sem sem)
{
    whsem_info info{};
    info.struct_size = sizeof info;
    size_t n = 0;
    whsem_status st = whsem_query(sem, &info, nullptr, 0, &n);
    if (st != WHSEM_OK) ADD_FAILURE() << "whsem_query: " << whsem_last_error();
    return info;
}

// The state once this process's unlocks have reached the backend, i.e.
// once `free` tickets are free: at once on shared memory, where a ticket is
// free when whsem_release returns. The PostgreSQL backend sends an unlock
// without waiting for its answer, on the session that holds the index (a
// wait's, for a ticket a wait obtained or an index granted to a wait that
// was withdrawn), and a query on another session may overtake it
// (src/pg/DESIGN.md, "Found by the library suites"). A ticket that never
// comes back still fails the caller's check.
inline whsem_info InfoWithFree(whsem_sem sem, int32_t free)
{
    whsem_info info = Info(sem);
    if (!OnSharedMemory()) Eventually([&] { return (info = Info(sem)).free_count == free; }, 10);
    return info;
}

// The status of an asynchronous acquisition that needs no waiting (a ticket
// is free, or it only tries): on shared memory it is final when
// whsem_acquire_async returns; whsem.h says only that it may be, and on
// PostgreSQL the try is a round trip that the backend's worker makes.
inline whsem_status StatusWithoutWaiting(whsem_op op)
{
    return OnSharedMemory() ? whsem_op_poll(op) : whsem_op_wait(op, 30000);
}

// Whether whsem_info.recoveries counts dead holders: the shared-memory
// backend reclaims their tickets itself; on PostgreSQL the server frees a
// dead session's locks, and nothing of the library's counts that.
inline bool CountsRecoveries() { return OnSharedMemory(); }

// Whether `host` names this machine as whsem_query_processes reports a
// process of it: "" on shared memory; on PostgreSQL the host name the
// process reported, with what application_name cannot carry as '?', and
// possibly cut short (the server keeps 63 bytes of it).
inline bool IsThisHost(const char *host)
{
    if (OnSharedMemory()) return host && !host[0];
    std::string mine = "?";
#ifndef _WIN32
    char buf[256] = "";
    if (gethostname(buf, sizeof buf - 1) == 0) mine = buf;
    for (char &c : mine)
        if (c <= ' ' || c > '~') c = '?';
#endif
    return host && host[0] && mine.rfind(host, 0) == 0;
}

// Rounds of a stress loop: an acquisition on PostgreSQL is a round trip to
// the server, on shared memory a few atomic operations, so the same loop
// runs fewer rounds there to keep the suites' time.
inline int Rounds(int on_shared_memory, int on_postgresql)
{
    return OnSharedMemory() ? on_shared_memory : on_postgresql;
}

// The processes holding tickets (at most 8), as whsem_query reports them.
inline std::vector<whsem_holder> Holders(whsem_sem sem)
{
    whsem_info info{};
    info.struct_size = sizeof info;
    std::vector<whsem_holder> holders(8);
    size_t n = 0;
    whsem_status st = whsem_query(sem, &info, holders.data(), holders.size(), &n);
    EXPECT_EQ(st, WHSEM_OK) << whsem_last_error();
    holders.resize(st == WHSEM_OK ? std::min(n, holders.size()) : 0);
    return holders;
}

// The threads of this process, or -1 if they cannot be counted.
#ifndef _WIN32
// Entries of a directory (threads in /proc/self/task, descriptors in
// /proc/self/fd), or -1.
inline int DirEntries(const char *path)
{
    DIR *d = opendir(path);
    if (!d) return -1;
    int n = 0;
    while (struct dirent *de = readdir(d))
        if (de->d_name[0] != '.') n++;
    closedir(d);
    return n;
}
#endif

inline int ThreadCount()
{
    int n = 0;
#ifdef _WIN32
    HANDLE snap = CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0);
    if (snap == INVALID_HANDLE_VALUE) return -1;
    THREADENTRY32 te{};
    te.dwSize = sizeof te;
    for (BOOL ok = Thread32First(snap, &te); ok; ok = Thread32Next(snap, &te))
        if (te.th32OwnerProcessID == GetCurrentProcessId()) n++;
    CloseHandle(snap);
#else
    n = DirEntries("/proc/self/task");
#endif
    return n;
}

// The memory this process has resident (its working set on Windows), in
// KiB, or -1.
inline long RssKb()
{
#ifdef _WIN32
    PROCESS_MEMORY_COUNTERS pmc{};
    pmc.cb = sizeof pmc;
    if (!GetProcessMemoryInfo(GetCurrentProcess(), &pmc, sizeof pmc)) return -1;
    return (long)(pmc.WorkingSetSize / 1024);
#else
    std::ifstream f("/proc/self/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    return -1;
#endif
}

// Waits for a completion queue the way an application's event loop does:
// epoll on its descriptor on Linux, a wait on its event on Windows.
class QueueWaiter {
  public:
    explicit QueueWaiter(whsem_queue q)
    {
#ifdef _WIN32
        uint64_t h = 0;
        whsem_status st = whsem_queue_handle(q, &h);
        if (st != WHSEM_OK) ADD_FAILURE() << "whsem_queue_handle: " << whsem_last_error();
        event_ = (HANDLE)(uintptr_t)h;
#else
        int32_t fd = -1;
        whsem_status st = whsem_queue_fd(q, &fd);
        if (st != WHSEM_OK) ADD_FAILURE() << "whsem_queue_fd: " << whsem_last_error();
        ep_ = epoll_create1(EPOLL_CLOEXEC);
        epoll_event ev{};
        ev.events = EPOLLIN;
        if (ep_ < 0 || epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev) != 0)
            ADD_FAILURE() << "cannot poll the queue's descriptor: " << strerror(errno);
#endif
    }
    ~QueueWaiter()
    {
#ifndef _WIN32
        if (ep_ >= 0) close(ep_);
#endif
    }
    QueueWaiter(const QueueWaiter &) = delete;
    QueueWaiter &operator=(const QueueWaiter &) = delete;
    // Whether the queue is (or becomes, within ms) ready: something posted.
    bool Ready(int ms)
    {
#ifdef _WIN32
        return WaitForSingleObject(event_, (DWORD)ms) == WAIT_OBJECT_0;
#else
        epoll_event ev;
        return epoll_wait(ep_, &ev, 1, ms) == 1;
#endif
    }

  private:
#ifdef _WIN32
    HANDLE event_ = nullptr;
#else
    int ep_ = -1;
#endif
};

// ---- other processes ---------------------------------------------------------------

// The exit code of a process killed the way a crash would kill it: 128 +
// SIGKILL on Linux, and what Child::Kill makes it on Windows.
constexpr int kKilled = 137;

// The program that runs the fault commands of commands.h: on Windows the
// helper built with fault points; on Linux the forked fault suite itself.
constexpr const char *kFaultHelper = kWindows ? "whsem_win_helper_fi.exe" : nullptr;

// A file whose appearance is a cue for a Child (commands.h: GO): Give
// creates it; it is removed when the Cue goes.
class Cue {
  public:
    Cue() : path_(UniqueName("cue")) {}
    ~Cue() { std::remove(path_.c_str()); }
    Cue(const Cue &) = delete;
    Cue &operator=(const Cue &) = delete;
    const std::string &path() const { return path_; }
    void Give()
    {
        FILE *f = std::fopen(path_.c_str(), "w");
        if (!f) ADD_FAILURE() << "cannot create " << path_;
        else std::fclose(f);
    }

  private:
    std::string path_;
};

#ifdef _WIN32

// The helper program sits next to the test executable.
inline std::string HelperPath(const char *exe)
{
    char self[MAX_PATH];
    DWORD n = GetModuleFileNameA(nullptr, self, sizeof self);
    std::string dir(self, n);
    return dir.substr(0, dir.find_last_of("\\/") + 1) + exe;
}

// Another process running a command of commands.h (or of the helper's
// own): the helper program, started; killed (if still running) when the
// Child goes.
class Child {
  public:
    explicit Child(const std::vector<std::string> &args, const char *exe = "whsem_win_helper.exe")
    {
        std::string cmd = "\"" + HelperPath(exe) + "\"";
        for (auto &a : args) cmd += " \"" + a + "\"";
        STARTUPINFOA si{};
        si.cb = sizeof si;
        PROCESS_INFORMATION pi{};
        std::vector<char> line(cmd.begin(), cmd.end());
        line.push_back(0);
        if (!CreateProcessA(nullptr, line.data(), nullptr, nullptr, FALSE, 0, nullptr, nullptr, &si,
                            &pi)) {
            ADD_FAILURE() << "CreateProcess " << cmd << ": error " << GetLastError();
            return;
        }
        CloseHandle(pi.hThread);
        process_ = pi.hProcess;
        pid_ = pi.dwProcessId;
    }
    ~Child()
    {
        if (process_) {
            TerminateProcess(process_, 199);
            WaitForSingleObject(process_, 30000);
            CloseHandle(process_);
        }
    }
    Child(const Child &) = delete;
    Child &operator=(const Child &) = delete;
    bool started() const { return process_ != nullptr; }
    long pid() const { return (long)pid_; }
    // Waits for the exit code (-1 if it did not end within the timeout).
    int Reap(int timeout_ms = 120000)
    {
        if (!process_ || WaitForSingleObject(process_, (DWORD)timeout_ms) != WAIT_OBJECT_0) return -1;
        DWORD code = 0;
        GetExitCodeProcess(process_, &code);
        return (int)code;
    }
    // Kills it the way a crash would, and waits until it is gone.
    int Kill()
    {
        if (!process_) return -1;
        TerminateProcess(process_, kKilled);
        return Reap();
    }

  private:
    HANDLE process_ = nullptr;
    DWORD pid_ = 0;
};

// Memory shared with helper processes (a named section the helper opens by
// the name it is given on its command line).
template <typename T> class Shared {
  public:
    Shared() : name_("Local\\" + UniqueName("ledger"))
    {
        section_ = CreateFileMappingA(INVALID_HANDLE_VALUE, nullptr, PAGE_READWRITE, 0, sizeof(T),
                                      name_.c_str());
        void *p = section_ ? MapViewOfFile(section_, FILE_MAP_ALL_ACCESS, 0, 0, sizeof(T)) : nullptr;
        if (!p) ADD_FAILURE() << "cannot create the shared ledger: " << GetLastError();
        else ptr_ = new (p) T();
    }
    ~Shared()
    {
        if (ptr_) {
            ptr_->~T();
            UnmapViewOfFile(ptr_);
        }
        if (section_) CloseHandle(section_);
    }
    Shared(const Shared &) = delete;
    Shared &operator=(const Shared &) = delete;
    T *operator->() const { return ptr_; }
    T *get() const { return ptr_; }
    const std::string &name() const { return name_; }

  private:
    std::string name_;
    HANDLE section_ = nullptr;
    T *ptr_ = nullptr;
};

#else

// Waits (at most 1 s) until every other thread of this process sleeps.
// A thread being born when fork() runs may hold the allocator lock of
// GCC's AddressSanitizer, which has no fork handlers: the child's first
// thread start then deadlocks. Forking while the library's threads are
// asleep avoids that.
inline void WaitForOtherThreadsToSleep()
{
    for (int round = 0; round < 100; round++) {
        bool busy = false;
        DIR *d = opendir("/proc/self/task");
        if (!d) return;
        long self = syscall(SYS_gettid);
        while (struct dirent *de = readdir(d)) {
            if (de->d_name[0] == '.' || atol(de->d_name) == self) continue;
            char path[64], buf[512];
            snprintf(path, sizeof path, "/proc/self/task/%s/stat", de->d_name);
            FILE *f = fopen(path, "r");
            if (!f) continue;
            size_t n = fread(buf, 1, sizeof buf - 1, f);
            fclose(f);
            buf[n] = 0;
            const char *close_paren = strrchr(buf, ')');
            if (close_paren && close_paren[1] == ' ' && close_paren[2] == 'R') busy = true;
        }
        closedir(d);
        if (!busy) return;
        usleep(10000);
    }
}

// Runs fn in a forked child; its return value becomes the exit code.
// The child never returns into gtest: it _exit()s.
inline pid_t Spawn(const std::function<int()> &fn)
{
    WaitForOtherThreadsToSleep();
    fflush(nullptr);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        // A test that fails early must not leave children behind: they
        // would keep CTest's output pipe open, and CTest waits for it.
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(97);
        int code = 99;
        try {
            code = fn();
        } catch (...) {
            code = 98;
        }
        _exit(code);
    }
    return pid;
}

// Waits for a child and returns its exit code, or 128 + signal.
inline int Reap(pid_t pid)
{
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
}

// Another process running a command of commands.h: a forked child, as
// the Windows suites start the helper program; killed (if still running)
// when the Child goes.
class Child {
  public:
    // exe: the Windows helper to run; a forked child runs the command in
    // this very program (built with fault points for the fault suite).
    explicit Child(const std::vector<std::string> &args, const char *exe = nullptr)
    {
        (void)exe;
        pid_ = Spawn([&] {
            std::vector<char *> argv;
            for (auto &a : args) argv.push_back(const_cast<char *>(a.c_str()));
            return whtest_command((int)argv.size(), argv.data());
        });
        running_ = pid_ > 0;
        if (!running_) ADD_FAILURE() << "fork: " << strerror(errno);
    }
    ~Child() { Kill(); }
    Child(const Child &) = delete;
    Child &operator=(const Child &) = delete;
    bool started() const { return pid_ > 0; }
    long pid() const { return (long)pid_; }
    // Waits for the exit code (-1 if it did not end within the timeout).
    int Reap(int timeout_ms = 120000)
    {
        auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        while (running_) {
            int status = 0;
            pid_t r = waitpid(pid_, &status, WNOHANG);
            if (r == pid_) {
                running_ = false; // reaped: its pid may be reused, never signal it again
                code_ = WIFEXITED(status)     ? WEXITSTATUS(status)
                        : WIFSIGNALED(status) ? 128 + WTERMSIG(status)
                                              : -1;
            } else if ((r < 0 && errno != EINTR) || std::chrono::steady_clock::now() >= end) {
                return -1;
            } else {
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
            }
        }
        return code_;
    }
    // Kills it the way a crash would, and waits until it is gone.
    int Kill()
    {
        if (running_) kill(pid_, SIGKILL);
        return Reap();
    }

  private:
    pid_t pid_ = -1;
    bool running_ = false;
    int code_ = -1;
};

// Memory shared with forked children (for counters and flags).
template <typename T> T *SharedAlloc()
{
    void *p = mmap(nullptr, sizeof(T), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return nullptr;
    return new (p) T();
}

template <typename T> void SharedFree(T *p)
{
    p->~T();
    munmap(p, sizeof(T));
}

// Forks a child that never touches the library and sleeps until killed,
// holding whatever it inherited; raw: without the pthread_atfork handlers
// (a raw clone, as some runtimes make). Returns its pid in the parent.
inline pid_t ForkSleeper(bool raw)
{
    pid_t p = raw ? (pid_t)syscall(SYS_fork) : fork();
    if (p == 0) {
        for (;;) pause();
    }
    return p;
}

inline std::string ForkKindName(const ::testing::TestParamInfo<bool> &i)
{
    return i.param ? "raw_syscall_fork" : "fork";
}

// Read-locks every liveness byte of a segment file (see src/linux/layout.h), as
// anyone who can read the file can; the descriptor is kept on purpose.
inline bool ReadLockLivenessBytes(const std::string &path)
{
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    struct flock fl{};
    fl.l_type = F_RDLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = (off_t)1 << 40;
    fl.l_len = 1024;
    return fd >= 0 && fcntl(fd, F_OFD_SETLK, &fl) == 0;
}

#endif

} // namespace whtest
