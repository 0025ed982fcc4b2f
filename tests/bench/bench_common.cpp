// SPDX-License-Identifier: MIT
#include "bench_common.h"

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <new>

#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>

namespace wb {

namespace {

// Fixed arrays, not containers: the signal handlers walk them, and must not
// meet a vector in the middle of a reallocation.
constexpr int kMaxRes = 512;
constexpr int kMaxChildren = 160;

struct Res {
    volatile int kind;  // -1 = empty, else ResKind
    int id;
    char name[256];
};

Res g_res[kMaxRes];
volatile pid_t g_children[kMaxChildren];
pid_t g_owner = 0;
const char *g_program = "whsem_bench";
char g_watch_what[160];
unsigned g_seq = 0;
cpu_set_t g_initial_mask;
bool g_have_mask = false;

bool is_owner() { return g_owner != 0 && getpid() == g_owner; }

void kill_children()
{
    for (int i = 0; i < kMaxChildren; i++) {
        pid_t p = g_children[i];
        if (p > 0) {
            kill(p, SIGKILL);
            waitpid(p, nullptr, 0);
            g_children[i] = 0;
        }
    }
}

void on_fatal_signal(int sig)
{
    if (!is_owner()) _exit(128 + sig);
    kill_children();
    res_remove_all();
    signal(sig, SIG_DFL);
    raise(sig);
}

void on_watchdog(int)
{
    if (!is_owner()) _exit(3);
    char msg[300];
    int len = snprintf(msg, sizeof msg, "%s: watchdog: '%s' did not finish in time; aborting\n",
                       g_program, g_watch_what);
    if (len > 0) (void)!write(2, msg, (size_t)std::min(len, (int)sizeof msg - 1));
    kill_children();
    // whsem_unlink is not async-signal-safe in general; here the owner is
    // stuck in a wait that holds none of the library's locks, so it is the
    // lesser evil compared with leaving segments in /dev/shm.
    res_remove_all();
    _exit(3);
}

void at_exit_cleanup()
{
    if (!is_owner()) return;
    kill_children();
    res_remove_all();
}

}  // namespace

void die(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s[%d]: %s\n", g_program, (int)getpid(), msg);
    fflush(stderr);
    if (!is_owner()) _exit(2);
    kill_children();
    res_remove_all();
    fflush(stdout);
    _exit(2);
}

int res_remember(ResKind kind, const std::string &name, int id)
{
    for (int i = 0; i < kMaxRes; i++) {
        if (g_res[i].kind != -1) continue;
        g_res[i].id = id;
        snprintf(g_res[i].name, sizeof g_res[i].name, "%s", name.c_str());
        g_res[i].kind = (int)kind;
        return i;
    }
    die("too many live benchmark resources (leak in the benchmark?)");
}

void res_forget(int slot)
{
    if (slot >= 0 && slot < kMaxRes) g_res[slot].kind = -1;
}

void res_remove_all()
{
    for (int i = 0; i < kMaxRes; i++) {
        int kind = g_res[i].kind;
        if (kind == -1) continue;
        g_res[i].kind = -1;
        switch ((ResKind)kind) {
        case ResKind::WhsemName: whsem_unlink(g_res[i].name, WHSEM_UNLINK_FORCE); break;
        case ResKind::PosixName: sem_unlink(g_res[i].name); break;
        case ResKind::SysvId: semctl(g_res[i].id, 0, IPC_RMID); break;
        case ResKind::File: unlink(g_res[i].name); break;
        }
    }
}

void child_remember(pid_t pid)
{
    for (int i = 0; i < kMaxChildren; i++)
        if (g_children[i] == 0) {
            g_children[i] = pid;
            return;
        }
    kill(pid, SIGKILL);
    die("too many child processes");
}

void child_forget(pid_t pid)
{
    for (int i = 0; i < kMaxChildren; i++)
        if (g_children[i] == pid) g_children[i] = 0;
}

void install_cleanup(const char *program)
{
    g_program = program;
    g_owner = getpid();
    for (int i = 0; i < kMaxRes; i++) g_res[i].kind = -1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fatal_signal;
    sigemptyset(&sa.sa_mask);
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGSEGV, SIGBUS, SIGABRT})
        sigaction(sig, &sa, nullptr);
    sa.sa_handler = on_watchdog;
    sigaction(SIGALRM, &sa, nullptr);
    atexit(at_exit_cleanup);
    save_affinity();
}

void watchdog(unsigned seconds, const char *what)
{
    snprintf(g_watch_what, sizeof g_watch_what, "%s", what ? what : "");
    alarm(seconds);
}

std::string unique_name(const char *key)
{
    return "whsem-bench-" + std::to_string((long)g_owner) + "-" + key + "-" + std::to_string(g_seq++);
}

void save_affinity()
{
    g_have_mask = sched_getaffinity(0, sizeof g_initial_mask, &g_initial_mask) == 0;
}

void restore_affinity()
{
    if (g_have_mask) sched_setaffinity(0, sizeof g_initial_mask, &g_initial_mask);
}

bool pin_to_cpu(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof set, &set) == 0;
}

uint64_t mono_ns()
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t calibrate_spin(double ns)
{
    // The fastest of several rounds: the slower ones were interrupted.
    const uint64_t n = 1u << 20;
    uint64_t best = UINT64_MAX;
    for (int round = 0; round < 15; round++) {
        uint64_t t0 = mono_ns();
        spin_iterations(n);
        best = std::min(best, mono_ns() - t0);
    }
    double per_ns = (double)n / (double)std::max<uint64_t>(best, 1);
    return std::max<uint64_t>(1, (uint64_t)(ns * per_ns + 0.5));
}

void child_setup(std::initializer_list<int> close_fds)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != g_owner) _exit(1);  // the owner died before prctl()
    for (int fd : close_fds) close(fd);
}

bool read_full(int fd, void *buf, size_t n)
{
    char *p = static_cast<char *>(buf);
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        p += r;
        n -= (size_t)r;
    }
    return true;
}

bool write_full(int fd, const void *buf, size_t n)
{
    const char *p = static_cast<const char *>(buf);
    while (n) {
        ssize_t r = write(fd, p, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        p += r;
        n -= (size_t)r;
    }
    return true;
}

Percentiles percentiles(std::vector<double> v)
{
    Percentiles p;
    p.n = v.size();
    if (v.empty()) return p;
    std::sort(v.begin(), v.end());
    auto rank = [&](double q) { return v[std::min(v.size() - 1, (size_t)(q * (double)v.size()))]; };
    p.p50 = rank(0.50);
    p.p99 = rank(0.99);
    p.max = v.back();
    return p;
}

bool parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

std::string machine_description()
{
    std::string model = "unknown CPU";
    std::ifstream cpuinfo("/proc/cpuinfo");
    for (std::string line; std::getline(cpuinfo, line);) {
        if (line.rfind("model name", 0) == 0) {
            size_t colon = line.find(':');
            if (colon != std::string::npos) model = line.substr(colon + 2);
            break;
        }
    }
    struct utsname u;
    std::string kernel = uname(&u) == 0 ? std::string(u.sysname) + " " + u.release + " " + u.machine : "?";
    return "nproc " + std::to_string(sysconf(_SC_NPROCESSORS_ONLN)) + ", CPU " + model +
           ", kernel " + kernel + ", libwhsem " + whsem_version_string();
}

// ---- libwhsem -------------------------------------------------------------

void WhsemPrim::fail(const char *what, whsem_status st)
{
    die("%s: %s (%s)", what, whsem_status_name(st), whsem_last_error());
}

WhsemPrim::Shared WhsemPrim::create(int n, int max)
{
    Shared sh;
    sh.max = max;
    for (int i = 0; i < n; i++) {
        std::string name = unique_name(kKey);
        whsem_sem s;
        whsem_status st = whsem_open(name.c_str(), max, nullptr, &s);
        if (st != WHSEM_OK) fail("whsem_open(create)", st);
        sh.slots.push_back(res_remember(ResKind::WhsemName, name));
        sh.names.push_back(name);
        whsem_close(s);
    }
    return sh;
}

void WhsemPrim::destroy(Shared &sh)
{
    for (size_t i = 0; i < sh.names.size(); i++) {
        whsem_status st = whsem_unlink(sh.names[i].c_str(), 0);
        if (st == WHSEM_E_BUSY) {
            fprintf(stderr, "warning: whsem_unlink(%s): %s (%s); forcing\n", sh.names[i].c_str(),
                    whsem_status_name(st), whsem_last_error());
            st = whsem_unlink(sh.names[i].c_str(), WHSEM_UNLINK_FORCE);
        }
        if (st != WHSEM_OK)
            fprintf(stderr, "warning: whsem_unlink(%s): %s (%s)\n", sh.names[i].c_str(),
                    whsem_status_name(st), whsem_last_error());
        res_forget(sh.slots[i]);
    }
    sh.names.clear();
    sh.slots.clear();
}

WhsemPrim::WhsemPrim(const Shared &sh) : held_(sh.names.size(), 0)
{
    for (const std::string &name : sh.names) {
        whsem_sem s;
        whsem_status st = whsem_open(name.c_str(), sh.max, nullptr, &s);
        if (st != WHSEM_OK) fail("whsem_open", st);
        sems_.push_back(s);
    }
}

WhsemPrim::~WhsemPrim()
{
    for (whsem_sem s : sems_) whsem_close(s);
}

// ---- POSIX ------------------------------------------------------------------

const char *PosixPrim::err_text(int e) { return strerror(e); }

PosixPrim::Shared PosixPrim::create(int n, int max)
{
    Shared sh;
    for (int i = 0; i < n; i++) {
        std::string name = "/" + unique_name(kKey);
        sem_t *s = sem_open(name.c_str(), O_CREAT | O_EXCL, 0600, (unsigned)max);
        if (s == SEM_FAILED) die("sem_open(%s, O_CREAT): %s", name.c_str(), strerror(errno));
        sh.slots.push_back(res_remember(ResKind::PosixName, name));
        sh.names.push_back(name);
        sem_close(s);
    }
    return sh;
}

void PosixPrim::destroy(Shared &sh)
{
    for (size_t i = 0; i < sh.names.size(); i++) {
        if (sem_unlink(sh.names[i].c_str()) != 0)
            fprintf(stderr, "warning: sem_unlink(%s): %s\n", sh.names[i].c_str(), strerror(errno));
        res_forget(sh.slots[i]);
    }
    sh.names.clear();
    sh.slots.clear();
}

PosixPrim::PosixPrim(const Shared &sh)
{
    for (const std::string &name : sh.names) {
        sem_t *s = sem_open(name.c_str(), 0);
        if (s == SEM_FAILED) die("sem_open(%s): %s", name.c_str(), strerror(errno));
        sems_.push_back(s);
    }
}

PosixPrim::~PosixPrim()
{
    for (sem_t *s : sems_) sem_close(s);
}

// ---- System V ---------------------------------------------------------------

namespace {
union semun_arg {
    int val;
    struct semid_ds *buf;
    unsigned short *array;
};
}  // namespace

SysvPrim::Shared SysvPrim::create(int n, int max)
{
    Shared sh;
    // IPC_PRIVATE: a fresh set every time, so no key can collide with
    // another run; children reach it through the inherited id.
    sh.semid = semget(IPC_PRIVATE, n, IPC_CREAT | 0600);
    if (sh.semid < 0) die("semget: %s", strerror(errno));
    sh.slot = res_remember(ResKind::SysvId, "", sh.semid);
    std::vector<unsigned short> init((size_t)n, (unsigned short)max);
    semun_arg arg;
    arg.array = init.data();
    if (semctl(sh.semid, 0, SETALL, arg) != 0) die("semctl(SETALL): %s", strerror(errno));
    return sh;
}

void SysvPrim::destroy(Shared &sh)
{
    if (sh.semid >= 0 && semctl(sh.semid, 0, IPC_RMID) != 0)
        fprintf(stderr, "warning: semctl(IPC_RMID): %s\n", strerror(errno));
    res_forget(sh.slot);
    sh.semid = -1;
    sh.slot = -1;
}

// ---- flock ------------------------------------------------------------------

FlockPrim::Shared FlockPrim::create(int n, int max)
{
    Shared sh;
    for (int i = 0; i < n; i++) {
        std::vector<std::string> files;
        for (int j = 0; j < max; j++) {
            std::string path = "/dev/shm/" + unique_name(kKey);
            int fd = open(path.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
            if (fd < 0) die("open(%s): %s", path.c_str(), strerror(errno));
            close(fd);
            sh.slots.push_back(res_remember(ResKind::File, path));
            files.push_back(path);
        }
        sh.paths.push_back(files);
    }
    return sh;
}

void FlockPrim::destroy(Shared &sh)
{
    for (auto &files : sh.paths)
        for (auto &path : files)
            if (unlink(path.c_str()) != 0)
                fprintf(stderr, "warning: unlink(%s): %s\n", path.c_str(), strerror(errno));
    for (int slot : sh.slots) res_forget(slot);
    sh.paths.clear();
    sh.slots.clear();
}

FlockPrim::FlockPrim(const Shared &sh) : held_(sh.paths.size(), 0), rr_((size_t)getpid())
{
    for (auto &files : sh.paths) {
        std::vector<int> fds;
        for (auto &path : files) {
            // A descriptor of our own: flock locks belong to the open file
            // description, which a forked child would otherwise share.
            int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
            if (fd < 0) die("open(%s): %s", path.c_str(), strerror(errno));
            fds.push_back(fd);
        }
        fds_.push_back(fds);
    }
}

FlockPrim::~FlockPrim()
{
    for (auto &fds : fds_)
        for (int fd : fds) close(fd);
}

// ---- atomic floor -------------------------------------------------------------

AtomicPrim::Shared AtomicPrim::create(int n, int max)
{
    Shared sh;
    sh.n = n;
    sh.path = "/dev/shm/" + unique_name(kKey);
    int fd = open(sh.path.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) die("open(%s): %s", sh.path.c_str(), strerror(errno));
    sh.slot = res_remember(ResKind::File, sh.path);
    size_t len = sizeof(AtomicCell) * (size_t)n;
    if (ftruncate(fd, (off_t)len) != 0) die("ftruncate(%s): %s", sh.path.c_str(), strerror(errno));
    void *p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) die("mmap(%s): %s", sh.path.c_str(), strerror(errno));
    close(fd);
    AtomicCell *cells = static_cast<AtomicCell *>(p);
    for (int i = 0; i < n; i++) {
        new (&cells[i].count) std::atomic<uint32_t>((uint32_t)max);
        new (&cells[i].waiters) std::atomic<uint32_t>(0);
    }
    munmap(p, len);
    return sh;
}

void AtomicPrim::destroy(Shared &sh)
{
    if (!sh.path.empty() && unlink(sh.path.c_str()) != 0)
        fprintf(stderr, "warning: unlink(%s): %s\n", sh.path.c_str(), strerror(errno));
    res_forget(sh.slot);
    sh.path.clear();
    sh.slot = -1;
}

AtomicPrim::AtomicPrim(const Shared &sh) : len_(sizeof(AtomicCell) * (size_t)sh.n)
{
    int fd = open(sh.path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) die("open(%s): %s", sh.path.c_str(), strerror(errno));
    void *p = mmap(nullptr, len_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) die("mmap(%s): %s", sh.path.c_str(), strerror(errno));
    close(fd);
    cells_ = static_cast<AtomicCell *>(p);
}

AtomicPrim::~AtomicPrim()
{
    if (cells_) munmap(cells_, len_);
}

}  // namespace wb
