// SPDX-License-Identifier: MIT
// Asynchronous acquisition figures (a benchmark, not a test):
//   - library threads and memory for N pending operations on one semaphore;
//   - release -> completion latency through a callback, through the
//     completion queue's descriptor (epoll), through whsem_op_wait, next to
//     the blocking handoff (a thread blocked in whsem_acquire);
//   - how late timeouts and cancellations complete after they are due.
// Latencies are medians and p99 over many rounds, all measured in one run
// with the paths taking turns, with each p50 next to the blocking path's.
#include "whsem.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fstream>
#include <memory>
#include <string>
#include <sys/epoll.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

int64_t NowNs() { return std::chrono::steady_clock::now().time_since_epoch().count(); }

int Threads()
{
    int n = 0;
    if (DIR *d = opendir("/proc/self/task")) {
        while (dirent *e = readdir(d))
            if (e->d_name[0] != '.') n++;
        closedir(d);
    }
    return n;
}

long RssKb()
{
    std::ifstream f("/proc/self/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    return 0;
}

void Check(whsem_status st, const char *what)
{
    if (st != WHSEM_OK) {
        fprintf(stderr, "%s: %s: %s\n", what, whsem_status_name(st), whsem_last_error());
        exit(1);
    }
}

struct Stats {
    double p50, p99, max;
};

Stats Summarize(std::vector<int64_t> v)
{
    std::sort(v.begin(), v.end());
    auto at = [&](double q) { return v[std::min(v.size() - 1, (size_t)(q * (double)v.size()))] / 1000.0; };
    return {at(0.5), at(0.99), v.back() / 1000.0};
}

struct Sem {
    std::string name;
    whsem_sem sem = 0;
    explicit Sem(int max)
    {
        name = "bench-async-" + std::to_string(getpid()) + "-" + std::to_string(NowNs() % 100000);
        Check(whsem_open(name.c_str(), max, nullptr, &sem), "open");
    }
    ~Sem()
    {
        whsem_close(sem);
        whsem_unlink(name.c_str(), WHSEM_UNLINK_FORCE);
    }
};

// ---- scale ---------------------------------------------------------------

void Scale(int n)
{
    Sem s(1);
    whsem_ticket held;
    Check(whsem_acquire(s.sem, 0, 0, &held), "hold");
    int threads0 = Threads();
    long rss0 = RssKb();
    std::vector<whsem_op> ops(n);
    for (auto &op : ops) Check(whsem_acquire_async(s.sem, WHSEM_INFINITE, 0, nullptr, nullptr, &op), "async");
    usleep(200000);
    int threads1 = Threads();
    long rss1 = RssKb();
    printf("| %d pending operations on one semaphore | %+d library threads | %.0f bytes each (RSS) |\n", n,
           threads1 - threads0, (double)(rss1 - rss0) * 1024.0 / n);
    for (auto op : ops) whsem_op_free(op);
    whsem_release(held);
}

// ---- release -> completion ----------------------------------------------------

std::atomic<int64_t> completed_at{0};

void WHSEM_CALL OnDone(whsem_op, whsem_status, void *) { completed_at.store(NowNs()); }

enum class Path { Blocking, Callback, Queue, OpWait };

const char *PathName(Path p)
{
    switch (p) {
    case Path::Blocking: return "blocking whsem_acquire (a thread blocked in it)";
    case Path::Callback: return "callback";
    case Path::Queue: return "completion queue fd (epoll_wait)";
    case Path::OpWait: return "whsem_op_wait (a thread blocked in it)";
    }
    return "?";
}

// One path's semaphore (and queue), for all its rounds.
struct PathState {
    Sem s{1};
    whsem_queue q = 0;
    int ep = -1;
    explicit PathState(Path path)
    {
        if (path != Path::Queue) return;
        Check(whsem_queue_new(&q), "queue");
        int32_t fd;
        whsem_queue_fd(q, &fd);
        ep = epoll_create1(0);
        epoll_event ev{};
        ev.events = EPOLLIN;
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
    ~PathState()
    {
        if (ep >= 0) close(ep);
        if (q) whsem_queue_free(q);
    }
};

// One release -> completion, in ns.
int64_t OneRound(Path path, PathState &ps)
{
    whsem_ticket held;
    Check(whsem_acquire(ps.s.sem, WHSEM_INFINITE, 0, &held), "hold");
    std::atomic<int> phase{0};
    int64_t released = 0, done = 0;
    whsem_op op = 0;
    std::thread waiter;
    if (path == Path::Blocking || path == Path::OpWait) {
        if (path == Path::OpWait)
            Check(whsem_acquire_async(ps.s.sem, WHSEM_INFINITE, 0, nullptr, nullptr, &op), "async");
        waiter = std::thread([&] {
            phase = 1;
            whsem_ticket t;
            if (path == Path::Blocking) {
                whsem_acquire(ps.s.sem, WHSEM_INFINITE, 0, &t);
                done = NowNs();
                whsem_release(t);
            } else {
                whsem_op_wait(op, WHSEM_INFINITE);
                done = NowNs();
            }
        });
        while (phase == 0) std::this_thread::yield();
        usleep(300); // let it go to sleep
    } else if (path == Path::Callback) {
        completed_at = 0;
        Check(whsem_acquire_async(ps.s.sem, WHSEM_INFINITE, 0, OnDone, nullptr, &op), "async");
        usleep(300);
    } else {
        Check(whsem_acquire_queued(ps.s.sem, WHSEM_INFINITE, 0, ps.q, 1, &op), "queued");
        usleep(300);
    }
    released = NowNs();
    whsem_release(held);
    if (path == Path::Blocking || path == Path::OpWait) {
        waiter.join();
    } else if (path == Path::Callback) {
        while (completed_at.load() == 0) std::this_thread::yield();
        done = completed_at.load();
    } else {
        epoll_event ev;
        epoll_wait(ps.ep, &ev, 1, -1);
        done = NowNs();
        whsem_op got;
        uint64_t tag;
        whsem_queue_pop(ps.q, &got, &tag);
    }
    if (op) whsem_op_free(op); // releases the ticket the operation got
    return done - released;
}

// The paths take turns round by round, so that the machine changing speed
// during the run (a shared VM does) touches them all alike.
std::vector<Stats> ReleaseToCompletion(const std::vector<Path> &paths, int rounds)
{
    std::vector<std::unique_ptr<PathState>> state;
    for (Path p : paths) state.push_back(std::make_unique<PathState>(p));
    std::vector<std::vector<int64_t>> lat(paths.size());
    for (int r = 0; r < rounds + 50; r++)
        for (size_t i = 0; i < paths.size(); i++) {
            int64_t ns = OneRound(paths[i], *state[i]);
            if (r >= 50) lat[i].push_back(ns);
        }
    std::vector<Stats> out;
    for (auto &l : lat) out.push_back(Summarize(l));
    return out;
}

// ---- lateness of timeouts and cancellations -------------------------------

Stats Lateness(bool cancel, int rounds)
{
    Sem s(1);
    whsem_ticket held;
    Check(whsem_acquire(s.sem, 0, 0, &held), "hold");
    std::vector<int64_t> late;
    for (int r = 0; r < rounds; r++) {
        whsem_op op;
        int64_t due;
        if (cancel) {
            Check(whsem_acquire_async(s.sem, WHSEM_INFINITE, 0, nullptr, nullptr, &op), "async");
            usleep(2000);
            due = NowNs();
            whsem_op_cancel(op);
        } else {
            due = NowNs() + 20 * 1000000LL;
            Check(whsem_acquire_async(s.sem, 20, 0, nullptr, nullptr, &op), "async");
        }
        whsem_op_wait(op, WHSEM_INFINITE);
        late.push_back(std::max<int64_t>(0, NowNs() - due));
        whsem_op_free(op);
    }
    whsem_release(held);
    return Summarize(late);
}

} // namespace

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 2000;
    printf("## Asynchronous acquisition (tests/bench/bench_async.cpp, %d rounds)\n\n", rounds);
    printf("| scale | threads | memory |\n|---|---|---|\n");
    Scale(10000);
    // p50 / blocking: issue 14 asks for at most 1.5 for the callback and
    // whsem_op_wait.
    printf("\n| release -> completion, one process | p50 µs | p99 µs | max µs | p50 / blocking |\n"
           "|---|---|---|---|---|\n");
    const std::vector<Path> paths{Path::Blocking, Path::Callback, Path::Queue, Path::OpWait};
    std::vector<Stats> st = ReleaseToCompletion(paths, rounds);
    for (size_t i = 0; i < paths.size(); i++)
        printf("| %s | %.1f | %.1f | %.0f | %.2f |\n", PathName(paths[i]), st[i].p50, st[i].p99, st[i].max,
               st[0].p50 > 0 ? st[i].p50 / st[0].p50 : 0.0);
    printf("\n| completes after it is due | p50 ms | p99 ms | max ms | target |\n|---|---|---|---|---|\n");
    Stats t = Lateness(false, 200);
    printf("| 20 ms timeout | %.2f | %.2f | %.2f | <= 20 ms: %s |\n", t.p50 / 1000, t.p99 / 1000, t.max / 1000,
           t.p99 / 1000 <= 20 ? "PASS" : "MISS");
    Stats c = Lateness(true, 200);
    printf("| whsem_op_cancel | %.2f | %.2f | %.2f | <= 20 ms: %s |\n", c.p50 / 1000, c.p99 / 1000, c.max / 1000,
           c.p99 / 1000 <= 20 ? "PASS" : "MISS");
    return 0;
}
