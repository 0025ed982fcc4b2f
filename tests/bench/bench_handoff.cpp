// SPDX-License-Identifier: MIT
// Figure (b): cross-process handoff latency.
//
// Two processes pass the right to run back and forth through max-1
// semaphores used as locks (release by the holder only: libwhsem tickets
// cannot be released by another process, so the "post from the other side"
// ping-pong of classic semaphores is not an option).
//
// Three locks L0..L2, not two: with two, a process would release a lock and
// then at once try to take the same lock back, and every primitive without
// direct handoff (POSIX, flock, the atomic floor) can let it win that race
// against the woken waiter, so the measured loop would no longer alternate.
// With three locks no process ever asks again for a lock the other side has
// not taken yet:
//
//   A (parent) starts holding L0, L1; B (child) holds L2.
//   A, round k: release L[k%3];     acquire L[(k+2)%3]  (held by B: A sleeps)
//   B, round k: acquire L[k%3]      (A just released it: B is woken)
//               release L[(k+2)%3]  (A waits for it: A is woken)
//
// So every round trip contains two real wake-ups through the primitive, one
// in each direction; one-way handoff latency = round-trip time / 2. The
// parent time-stamps every round trip for the median and p99.
#include "bench_common.h"
#include "figures.h"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <string>
#include <vector>

#include <sys/wait.h>

namespace wb {
namespace {

template <class P>
void BM_Handoff(benchmark::State &state, int child_cpu, std::string what)
{
    if (child_cpu >= sysconf(_SC_NPROCESSORS_ONLN)) {
        state.SkipWithError("not enough CPUs for this pinning");
        for (auto _ : state) {
        }
        return;
    }
    const int64_t n = state.max_iterations;
    const int64_t warm = g_cfg.warmup_round_trips;
    typename P::Shared sh = P::create(3, 1);
    if (!pin_to_cpu(0)) die("sched_setaffinity(CPU 0): %s", strerror(errno));
    int ready[2], go[2];
    if (pipe(ready) != 0 || pipe(go) != 0) die("pipe: %s", strerror(errno));
    watchdog(g_cfg.watchdog_s, what.c_str());

    pid_t pid = fork();
    if (pid < 0) die("fork: %s", strerror(errno));
    if (pid == 0) {
        child_setup({ready[0], go[1]});
        if (!pin_to_cpu(child_cpu)) _exit(4);
        {
            P p(sh);
            p.acquire(2);
            char c = 'r';
            if (!write_full(ready[1], &c, 1)) _exit(5);
            close(ready[1]);
            if (!read_full(go[0], &c, 1)) _exit(6);
            int r = 2;
            for (int64_t i = 0; i < warm + n; i++) {
                p.acquire((r + 1) % 3);
                p.release(r);
                r = (r + 1) % 3;
            }
            p.release(r);
        }
        _exit(0);
    }
    child_remember(pid);
    close(ready[1]);
    close(go[0]);

    std::vector<uint32_t> rtt;
    rtt.reserve((size_t)n);
    int r = 0;  // A holds L[r] and L[(r+1)%3] between rounds
    {
        P p(sh);
        p.acquire(0);
        p.acquire(1);
        char c;
        if (!read_full(ready[0], &c, 1)) {
            state.SkipWithError("the child process failed before the start");
        } else {
            c = 'g';
            if (!write_full(go[1], &c, 1)) die("write(start pipe): %s", strerror(errno));
            for (int64_t i = 0; i < warm; i++) {
                p.release(r);
                p.acquire((r + 2) % 3);
                r = (r + 1) % 3;
            }
            uint64_t prev = mono_ns();
            for (auto _ : state) {
                p.release(r);
                p.acquire((r + 2) % 3);
                r = (r + 1) % 3;
                uint64_t now = mono_ns();
                rtt.push_back((uint32_t)std::min<uint64_t>(now - prev, UINT32_MAX));
                prev = now;
            }
        }
        p.release(r);
        p.release((r + 1) % 3);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    child_forget(pid);
    watchdog(0, nullptr);
    restore_affinity();
    close(ready[0]);
    close(go[1]);
    P::destroy(sh);

    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        state.SkipWithError("the child process failed");
        return;
    }
    if (rtt.empty()) return;
    std::vector<uint32_t> sorted(rtt);
    std::sort(sorted.begin(), sorted.end());
    auto pct = [&](double q) {
        size_t idx = (size_t)(q * (double)(sorted.size() - 1) + 0.5);
        return (double)sorted[std::min(idx, sorted.size() - 1)];
    };
    double mean = (double)std::accumulate(rtt.begin(), rtt.end(), uint64_t{0}) / (double)rtt.size();
    state.counters["oneway_ns"] = mean / 2;
    state.counters["oneway_p50_ns"] = pct(0.50) / 2;
    state.counters["oneway_p99_ns"] = pct(0.99) / 2;
}

template <class P>
void reg(const char *fig, int child_cpu)
{
    std::string name = std::string(fig) + "/" + P::kKey;
    auto *b = benchmark::RegisterBenchmark(name.c_str(), BM_Handoff<P>, child_cpu, name)
                  ->Iterations(g_cfg.round_trips)
                  ->UseRealTime()
                  ->Unit(benchmark::kMicrosecond);
    if (g_cfg.slow_repetitions > 0) b->Repetitions(g_cfg.slow_repetitions);
}

template <class P>
void reg_both()
{
    reg<P>(kFigHandoffSame, 0);
    reg<P>(kFigHandoffCross, 1);
}

}  // namespace

void register_handoff()
{
    reg_both<WhsemPrim>();
    reg_both<PosixPrim>();
    reg_both<SysvPrim>();
    reg_both<FlockPrim>();
    reg_both<AtomicPrim>();
}

}  // namespace wb
