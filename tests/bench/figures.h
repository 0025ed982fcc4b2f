/* SPDX-License-Identifier: MIT */
// The three figures of whsem_bench and the knobs main() reads from the
// command line (see README.md).
#ifndef WHSEM_BENCH_FIGURES_H
#define WHSEM_BENCH_FIGURES_H

#include <cstdint>

namespace wb {

struct Config {
    int64_t round_trips = 20000;     // (b): timed round trips per repetition
    int64_t warmup_round_trips = 2000;
    double throughput_seconds = 2.0; // (c): duration of one repetition
    int procs = 8;                   // (c): contending processes
    int max_count = 2;               // (c): tickets of the contended semaphore
    double work_ns = 200;            // (c): critical section length
    uint64_t work_iters = 0;         // (c): work_ns, calibrated by main()
    unsigned watchdog_s = 60;        // (b), (c): a stuck repetition aborts the run
    int slow_repetitions = 0;        // (b), (c): repetitions; 0 = --benchmark_repetitions
};
extern Config g_cfg;

// Benchmark names are "<figure>/<primitive key>"; the table in main.cpp
// looks them up by these prefixes.
constexpr const char *kFigUncontended = "a_uncontended";
constexpr const char *kFigHandoffSame = "b_handoff_same_cpu";
constexpr const char *kFigHandoffCross = "b_handoff_cross_cpu";
constexpr const char *kFigThroughput = "c_throughput";

void register_uncontended();
void register_handoff();
void register_throughput();

}  // namespace wb

#endif
