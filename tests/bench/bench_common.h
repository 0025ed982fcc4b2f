// SPDX-License-Identifier: MIT
// Shared pieces of the libwhsem benchmarks: the five primitives behind one
// compile-time interface, resource cleanup, pinning and process helpers.
//
// Every primitive is a class with the same shape, used as a template
// argument, so that the uncontended figure measures the primitive and not a
// virtual call (a POSIX pair costs ~5 ns; an indirect call would be a
// visible share of it):
//
//   struct P {
//     static constexpr const char *kKey;          // "whsem", "posix", ...
//     struct Shared;                              // what a forked process needs
//     static Shared create(int n, int max);       // n semaphores of max count max
//     static void destroy(Shared &);              // after every user is gone
//     explicit P(const Shared &);                 // opens them in this process
//     bool try_acquire(int i);
//     void acquire(int i);                        // blocks
//     void release(int i);
//   };
//
// A process opens its own P after fork() and never uses one it inherited:
// flock locks belong to open file descriptions, which fork() shares, and
// whsem tickets belong to the process that acquired them.
#ifndef WHSEM_BENCH_COMMON_H
#define WHSEM_BENCH_COMMON_H

#include <whsem.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include <fcntl.h>
#include <semaphore.h>
#include <sys/file.h>
#include <sys/sem.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>
#include <linux/futex.h>

namespace wb {

// ---- Failure and cleanup -------------------------------------------------

// Prints the message and ends the process. In the process that owns the
// benchmark's resources it first removes them (and kills its children);
// a forked helper just _exit()s so that it runs none of the parent's
// atexit handlers or destructors.
[[noreturn]] void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

enum class ResKind { WhsemName, PosixName, SysvId, File };

// Remembers a named resource so that it is removed even if the run is
// interrupted (SIGINT, SIGTERM, the watchdog, die()). Returns a slot for
// res_forget() once the owner has removed it itself.
int res_remember(ResKind kind, const std::string &name, int id = -1);
void res_forget(int slot);
void res_remove_all();

// Child processes to SIGKILL if the owner has to bail out.
void child_remember(pid_t pid);
void child_forget(pid_t pid);

// Call once from main(): records the owner pid and installs the handlers
// that remove leftovers on SIGINT/SIGTERM/SIGHUP/SIGALRM and at exit.
void install_cleanup(const char *program);

// A SIGALRM watchdog for the multi-process figures: a primitive with no
// crash recovery (POSIX, the atomic floor) would block the parent forever
// if a child died holding it. 0 disarms.
void watchdog(unsigned seconds, const char *what);

// "whsem-bench-<pid>-<key>-<seq>": unique per run and per use.
std::string unique_name(const char *key);

// ---- Small helpers ---------------------------------------------------------

bool pin_to_cpu(int cpu);
void restore_affinity();   // undoes pin_to_cpu() for the owner
void save_affinity();      // remembers the owner's initial mask

// Spin work of calibrated length: the critical section of figure (c).
inline void spin_iterations(uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) __asm__ __volatile__("" ::: "memory");
}
uint64_t calibrate_spin(double ns);

uint64_t mono_ns();

// In a forked child: die with the parent, and drop the pipe ends it must not
// hold (a held write end would keep the parent's EOF from ever arriving).
void child_setup(std::initializer_list<int> close_fds);

// Reads exactly n bytes (false on EOF or error).
bool read_full(int fd, void *buf, size_t n);
bool write_full(int fd, const void *buf, size_t n);

std::string machine_description();  // nproc, CPU model, kernel

// p50, p99 and max of a sample (zeros when it is empty).
struct Percentiles {
    size_t n = 0;
    double p50 = 0, p99 = 0, max = 0;
};
Percentiles percentiles(std::vector<double> v);

// A whole decimal number in [lo, hi], for command-line values.
bool parse_long(const char *s, long lo, long hi, long *out);

// ---- libwhsem -------------------------------------------------------------

class WhsemPrim {
public:
    static constexpr const char *kKey = "whsem";
    struct Shared {
        std::vector<std::string> names;
        std::vector<int> slots;
        int max = 1;
    };
    static Shared create(int n, int max);
    static void destroy(Shared &sh);

    explicit WhsemPrim(const Shared &sh);
    ~WhsemPrim();
    WhsemPrim(const WhsemPrim &) = delete;
    WhsemPrim &operator=(const WhsemPrim &) = delete;

    bool try_acquire(int i)
    {
        whsem_ticket t;
        whsem_status st = whsem_acquire(sems_[i], 0, 0, &t);
        if (__builtin_expect(st == WHSEM_OK, 1)) {
            held_[i] = t;
            return true;
        }
        if (st == WHSEM_TIMEOUT) return false;
        fail("whsem_acquire(0)", st);
    }
    void acquire(int i)
    {
        whsem_ticket t;
        whsem_status st = whsem_acquire(sems_[i], WHSEM_INFINITE, 0, &t);
        if (__builtin_expect(st != WHSEM_OK, 0)) fail("whsem_acquire(INFINITE)", st);
        held_[i] = t;
    }
    void release(int i)
    {
        whsem_status st = whsem_release(held_[i]);
        if (__builtin_expect(st != WHSEM_OK, 0)) fail("whsem_release", st);
    }

private:
    [[noreturn]] static void fail(const char *what, whsem_status st);
    std::vector<whsem_sem> sems_;
    std::vector<whsem_ticket> held_;  // one ticket per semaphore and process
};

// ---- POSIX named semaphores --------------------------------------------

class PosixPrim {
public:
    static constexpr const char *kKey = "posix";
    struct Shared {
        std::vector<std::string> names;
        std::vector<int> slots;
    };
    static Shared create(int n, int max);
    static void destroy(Shared &sh);

    explicit PosixPrim(const Shared &sh);
    ~PosixPrim();
    PosixPrim(const PosixPrim &) = delete;
    PosixPrim &operator=(const PosixPrim &) = delete;

    bool try_acquire(int i)
    {
        if (__builtin_expect(sem_trywait(sems_[i]) == 0, 1)) return true;
        if (errno == EAGAIN) return false;
        die("sem_trywait: %s", err_text(errno));
    }
    void acquire(int i)
    {
        while (sem_wait(sems_[i]) != 0)
            if (errno != EINTR) die("sem_wait: %s", err_text(errno));
    }
    void release(int i)
    {
        if (__builtin_expect(sem_post(sems_[i]) != 0, 0)) die("sem_post: %s", err_text(errno));
    }

private:
    static const char *err_text(int e);
    std::vector<sem_t *> sems_;
};

// ---- System V semaphores, every operation with SEM_UNDO ---------------------

class SysvPrim {
public:
    static constexpr const char *kKey = "sysv";
    struct Shared {
        int semid = -1;
        int slot = -1;
    };
    static Shared create(int n, int max);
    static void destroy(Shared &sh);

    explicit SysvPrim(const Shared &sh) : semid_(sh.semid) {}
    SysvPrim(const SysvPrim &) = delete;
    SysvPrim &operator=(const SysvPrim &) = delete;

    bool try_acquire(int i)
    {
        struct sembuf op = {(unsigned short)i, -1, IPC_NOWAIT | SEM_UNDO};
        if (__builtin_expect(semop(semid_, &op, 1) == 0, 1)) return true;
        if (errno == EAGAIN) return false;
        die("semop(-1, IPC_NOWAIT|SEM_UNDO): errno %d", errno);
    }
    void acquire(int i)
    {
        struct sembuf op = {(unsigned short)i, -1, SEM_UNDO};
        while (semop(semid_, &op, 1) != 0)
            if (errno != EINTR) die("semop(-1, SEM_UNDO): errno %d", errno);
    }
    void release(int i)
    {
        struct sembuf op = {(unsigned short)i, +1, SEM_UNDO};
        if (__builtin_expect(semop(semid_, &op, 1) != 0, 0)) die("semop(+1, SEM_UNDO): errno %d", errno);
    }

private:
    int semid_;
};

// ---- flock(2) ---------------------------------------------------------------
//
// flock is a lock, not a counting semaphore: a max-1 semaphore is one lock
// file. A max-k semaphore is emulated with k lock files: try LOCK_NB on each
// in turn; if all are held, block with LOCK_EX on one of them, chosen
// round-robin per process. The emulation can leave a waiter blocked on a
// busy file while another file is free, so it under-admits a little: it is
// the best flock can do without an extra wake-up channel.

class FlockPrim {
public:
    static constexpr const char *kKey = "flock";
    struct Shared {
        std::vector<std::vector<std::string>> paths;  // [semaphore][file]
        std::vector<int> slots;
    };
    static Shared create(int n, int max);
    static void destroy(Shared &sh);

    explicit FlockPrim(const Shared &sh);
    ~FlockPrim();
    FlockPrim(const FlockPrim &) = delete;
    FlockPrim &operator=(const FlockPrim &) = delete;

    bool try_acquire(int i)
    {
        std::vector<int> &f = fds_[i];
        for (size_t j = 0; j < f.size(); j++) {
            if (flock(f[j], LOCK_EX | LOCK_NB) == 0) {
                held_[i] = (int)j;
                return true;
            }
            if (errno != EWOULDBLOCK) die("flock(LOCK_EX|LOCK_NB): errno %d", errno);
        }
        return false;
    }
    void acquire(int i)
    {
        std::vector<int> &f = fds_[i];
        if (f.size() > 1 && try_acquire(i)) return;
        size_t j = f.size() > 1 ? rr_++ % f.size() : 0;
        while (flock(f[j], LOCK_EX) != 0)
            if (errno != EINTR) die("flock(LOCK_EX): errno %d", errno);
        held_[i] = (int)j;
    }
    void release(int i)
    {
        if (__builtin_expect(flock(fds_[i][held_[i]], LOCK_UN) != 0, 0))
            die("flock(LOCK_UN): errno %d", errno);
    }

private:
    std::vector<std::vector<int>> fds_;
    std::vector<int> held_;
    size_t rr_;
};

// ---- The physical floor: an atomic counter in a MAP_SHARED /dev/shm file --
//
// Acquire: CAS-decrement if > 0. Release: fetch_add, then a futex wake only
// if someone counted itself as a waiter. Blocking uses FUTEX_WAIT on the
// counter (no spinning, no sched_yield), like glibc's sem_wait; it barges
// (no handoff, no fairness), which is what makes it a floor.

struct alignas(64) AtomicCell {
    std::atomic<uint32_t> count;
    std::atomic<uint32_t> waiters;
};
static_assert(std::atomic<uint32_t>::is_always_lock_free, "futex words must be lock-free");

class AtomicPrim {
public:
    static constexpr const char *kKey = "atomic";
    struct Shared {
        std::string path;
        int slot = -1;
        int n = 0;
    };
    static Shared create(int n, int max);
    static void destroy(Shared &sh);

    explicit AtomicPrim(const Shared &sh);
    ~AtomicPrim();
    AtomicPrim(const AtomicPrim &) = delete;
    AtomicPrim &operator=(const AtomicPrim &) = delete;

    bool try_acquire(int i)
    {
        std::atomic<uint32_t> &c = cells_[i].count;
        uint32_t v = c.load(std::memory_order_relaxed);
        while (v > 0)
            if (c.compare_exchange_weak(v, v - 1, std::memory_order_acquire, std::memory_order_relaxed))
                return true;
        return false;
    }
    void acquire(int i)
    {
        AtomicCell &cell = cells_[i];
        while (!try_acquire(i)) {
            // seq_cst pairs with release(): either the releaser sees us in
            // waiters and wakes us, or our FUTEX_WAIT sees its increment.
            cell.waiters.fetch_add(1, std::memory_order_seq_cst);
            syscall(SYS_futex, &cell.count, FUTEX_WAIT, 0, nullptr, nullptr, 0);
            cell.waiters.fetch_sub(1, std::memory_order_relaxed);
        }
    }
    void release(int i)
    {
        AtomicCell &cell = cells_[i];
        cell.count.fetch_add(1, std::memory_order_seq_cst);
        if (__builtin_expect(cell.waiters.load(std::memory_order_seq_cst) != 0, 0))
            syscall(SYS_futex, &cell.count, FUTEX_WAKE, 1, nullptr, nullptr, 0);
    }

private:
    AtomicCell *cells_ = nullptr;
    size_t len_ = 0;
};

}  // namespace wb

#endif
