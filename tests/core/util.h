// Helpers shared by the googletest suites.
#pragma once

#include "whsem.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <thread>

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

namespace whtest {

// A name no other test (or earlier run) uses: tests run in parallel and
// segments outlive crashed test processes.
inline std::string UniqueName(const char *what)
{
    static std::atomic<int> counter{0};
    return std::string("whsem-test-") + what + "-" + std::to_string(getpid()) + "-" +
           std::to_string(counter++) + "-" +
           std::to_string(std::chrono::steady_clock::now().time_since_epoch().count() % 1000000);
}

// The segment file of a plain ASCII test name (see names.c for the encoding).
inline std::string SegmentPath(const std::string &name)
{
    return "/dev/shm/whsem." + name;
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

// Opens a fresh semaphore and removes its name when the test ends.
class Sem {
  public:
    Sem(int32_t max, const char *what = "sem", const whsem_open_options *opts = nullptr)
        : name_(UniqueName(what))
    {
        whsem_status st = whsem_open(name_.c_str(), max, opts, &sem_);
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

// Runs fn in a forked child; its return value becomes the exit code.
// The child never returns into gtest: it _exit()s.
inline pid_t Spawn(const std::function<int()> &fn)
{
    fflush(nullptr);
    pid_t pid = fork();
    if (pid == 0) {
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

// Polls cond for up to `seconds`, generous on purpose: the machine is noisy
// and tests must not depend on timing.
inline bool Eventually(const std::function<bool()> &cond, double seconds = 20)
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

} // namespace whtest
