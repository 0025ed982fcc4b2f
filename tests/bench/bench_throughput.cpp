// SPDX-License-Identifier: MIT
// Figure (c): throughput and fairness under contention.
//
// g_cfg.procs processes (8) loop on one semaphore of max count
// g_cfg.max_count (2) for g_cfg.throughput_seconds: blocking acquire, a
// calibrated spin of g_cfg.work_ns (the same for every primitive), release.
// Reported: acquisitions per second over all processes, and fairness =
// min / max of the per-process acquisition counts (1 = perfectly even,
// 0 = somebody starved), and voluntary context switches per acquisition
// (how often a process had to sleep to get a ticket: the price of handoff).
// flock emulates max 2 with two lock files (see
// FlockPrim in bench_common.h).
#include "bench_common.h"
#include "figures.h"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstring>
#include <chrono>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>

namespace wb {
namespace {

constexpr int kMaxProcs = 128;

struct Board {
    std::atomic<int> stop;
    // One cache line per process, so that the board can never add false
    // sharing to the primitive's own traffic.
    struct alignas(64) Count {
        uint64_t n;
        uint64_t vcsw;  // voluntary context switches: sleeps in the primitive
    } counts[kMaxProcs];
};

template <class P>
void BM_Throughput(benchmark::State &state, std::string what)
{
    const int procs = std::min(g_cfg.procs, kMaxProcs);
    typename P::Shared sh = P::create(1, g_cfg.max_count);
    void *mem = mmap(nullptr, sizeof(Board), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) die("mmap: %s", strerror(errno));
    Board *board = new (mem) Board();
    int ready[2], go[2];
    if (pipe(ready) != 0 || pipe(go) != 0) die("pipe: %s", strerror(errno));
    watchdog(g_cfg.watchdog_s + (unsigned)g_cfg.throughput_seconds, what.c_str());

    const uint64_t work = g_cfg.work_iters;
    std::vector<pid_t> pids;
    for (int k = 0; k < procs; k++) {
        pid_t pid = fork();
        if (pid < 0) die("fork: %s", strerror(errno));
        if (pid == 0) {
            child_setup({ready[0], go[1]});
            uint64_t n = 0;
            {
                P p(sh);
                char c = 'r';
                if (!write_full(ready[1], &c, 1)) _exit(5);
                // Closed at once, so that a sibling dying before its own
                // write shows as EOF to the parent instead of a hang.
                close(ready[1]);
                // EOF on the start pipe releases every child at once.
                if (read(go[0], &c, 1) != 0) _exit(6);
                struct rusage ru0;
                getrusage(RUSAGE_SELF, &ru0);
                while (!board->stop.load(std::memory_order_relaxed)) {
                    p.acquire(0);
                    spin_iterations(work);
                    p.release(0);
                    n++;
                }
                struct rusage ru1;
                getrusage(RUSAGE_SELF, &ru1);
                board->counts[k].vcsw = (uint64_t)(ru1.ru_nvcsw - ru0.ru_nvcsw);
            }
            board->counts[k].n = n;
            _exit(0);
        }
        child_remember(pid);
        pids.push_back(pid);
    }
    close(ready[1]);
    close(go[0]);
    char buf[kMaxProcs];
    bool started = read_full(ready[0], buf, (size_t)procs);
    if (!started) state.SkipWithError("a child process failed before the start");
    double elapsed = 0;
    for (auto _ : state) {
        uint64_t t0 = mono_ns();
        close(go[1]);
        go[1] = -1;
        std::this_thread::sleep_for(std::chrono::duration<double>(g_cfg.throughput_seconds));
        board->stop.store(1, std::memory_order_relaxed);
        uint64_t t1 = mono_ns();
        elapsed = (double)(t1 - t0) * 1e-9;
        state.SetIterationTime(elapsed);
    }
    if (go[1] >= 0) close(go[1]);  // not started: let the children see EOF
    board->stop.store(1, std::memory_order_relaxed);
    bool ok = started;
    for (pid_t pid : pids) {
        int status = 0;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        child_forget(pid);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ok = false;
    }
    watchdog(0, nullptr);
    close(ready[0]);
    P::destroy(sh);

    if (started && !ok) state.SkipWithError("a child process failed");
    if (ok) {
        uint64_t total = 0, lo = UINT64_MAX, hi = 0, vcsw = 0;
        for (int k = 0; k < procs; k++) {
            uint64_t n = board->counts[k].n;
            total += n;
            vcsw += board->counts[k].vcsw;
            lo = std::min(lo, n);
            hi = std::max(hi, n);
        }
        state.counters["acq_per_s"] = (double)total / elapsed;
        state.counters["fairness"] = hi ? (double)lo / (double)hi : 0.0;
        state.counters["min_count"] = (double)lo;
        state.counters["max_count"] = (double)hi;
        state.counters["sleeps_per_acq"] = total ? (double)vcsw / (double)total : 0.0;
        std::string label = "per-process:";
        for (int k = 0; k < procs; k++) label += " " + std::to_string(board->counts[k].n);
        state.SetLabel(label);
    }
    munmap(mem, sizeof(Board));
}

template <class P>
void reg()
{
    std::string name = std::string(kFigThroughput) + "/" + P::kKey;
    auto *b = benchmark::RegisterBenchmark(name.c_str(), BM_Throughput<P>, name)
                  ->Iterations(1)
                  ->UseManualTime()
                  ->Unit(benchmark::kMillisecond);
    if (g_cfg.slow_repetitions > 0) b->Repetitions(g_cfg.slow_repetitions);
}

}  // namespace

void register_throughput()
{
    reg<WhsemPrim>();
    reg<PosixPrim>();
    reg<SysvPrim>();
    reg<FlockPrim>();
    reg<AtomicPrim>();
}

}  // namespace wb
