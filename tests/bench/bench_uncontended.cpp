// SPDX-License-Identifier: MIT
// Figure (a): one uncontended acquire + release pair, in one process, on a
// max-1 semaphore that nobody else uses: the cost every user pays even
// when there is no contention at all.
#include "bench_common.h"
#include "figures.h"

#include <benchmark/benchmark.h>

#include <string>

namespace wb {
namespace {

template <class P>
void BM_Uncontended(benchmark::State &state)
{
    typename P::Shared sh = P::create(1, 1);
    {
        P p(sh);
        // The first pair attaches this process to the segment (whsem) or
        // faults the mapping in: not part of the steady state.
        if (!p.try_acquire(0)) die("%s: a fresh semaphore is not free", P::kKey);
        p.release(0);
        for (auto _ : state) {
            if (__builtin_expect(!p.try_acquire(0), 0)) die("%s: uncontended try-acquire failed", P::kKey);
            p.release(0);
        }
    }
    P::destroy(sh);
    state.SetItemsProcessed(state.iterations());
}

template <class P>
void reg()
{
    std::string name = std::string(kFigUncontended) + "/" + P::kKey;
    benchmark::RegisterBenchmark(name.c_str(), BM_Uncontended<P>)->Unit(benchmark::kNanosecond);
}

}  // namespace

void register_uncontended()
{
    reg<WhsemPrim>();
    reg<PosixPrim>();
    reg<SysvPrim>();
    reg<FlockPrim>();
    reg<AtomicPrim>();
}

}  // namespace wb
