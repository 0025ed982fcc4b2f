// SPDX-License-Identifier: MIT
// Recovery latency (a benchmark, not a test): how long after a holder is
// SIGKILLed does a process that waits for its ticket hold it?
//
//   whsem_bench_recovery [--kills 1000] [--waiters blocking,callback,op_wait]
//                        [--check-ms 0] [--delay-ms 100] [--timeout-ms 10000]
//
// One max-1 semaphore, two processes besides this supervisor: a waiter,
// long-lived, and a holder, forked afresh for every kill. A round: the
// holder opens the name and takes the ticket; the waiter starts waiting
// (whsem_acquire, a callback, or whsem_op_wait); after a random pause of
// 1 ms to --delay-ms (so that kills land anywhere in the abandonment-check
// period) the supervisor reads the clock and SIGKILLs the holder. The
// waiter reads the clock as soon as it holds the ticket (a callback: when
// it starts), reports, and releases. Nobody opens the name between the
// kill and the report: the ticket comes back through the waiter's own
// process noticing the death, not through a newcomer taking the dead slot
// over. The kill's clock is read before kill(), so the figure includes the
// kernel's exit of the holder.
//
// Printed: p50, p99 and max of kill -> waiter holds, per kind of waiter.
#include "bench_common.h"
#include "whsem.h"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <semaphore.h>
#include <string>
#include <vector>

#include <poll.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

namespace {

void SleepNs(int64_t ns)
{
    timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
    while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR) {
    }
}

int64_t NowNs() { return (int64_t)wb::mono_ns(); }

enum Kind { kBlocking, kCallback, kOpWait };
const char *const kKindName[] = {"blocking", "callback", "op_wait"};
const char *const kKindWhat[] = {"a thread blocked in whsem_acquire returns",
                                 "whsem_acquire_async's callback starts",
                                 "a thread blocked in whsem_op_wait returns"};

struct Config {
    long kills = 1000;
    std::vector<Kind> kinds{kBlocking, kCallback, kOpWait};
    long check_ms = 0;
    long delay_ms = 100;
    long timeout_ms = 10000;
    std::string name;
} g_cfg;

// Reads exactly n bytes if they come within timeout_ms.
bool ReadWithin(int fd, void *p, size_t n, long timeout_ms)
{
    pollfd pfd = {fd, POLLIN, 0};
    int r;
    while ((r = poll(&pfd, 1, (int)timeout_ms)) < 0 && errno == EINTR) {
    }
    return r > 0 && wb::read_full(fd, p, n);
}

whsem_sem OpenName(long check_ms)
{
    whsem_open_options o{};
    o.struct_size = sizeof o;
    o.abandonment_check_ms = (int32_t)check_ms;
    whsem_sem sem;
    whsem_status st = whsem_open(g_cfg.name.c_str(), 1, &o, &sem);
    if (st != WHSEM_OK) wb::die("whsem_open: %s: %s", whsem_status_name(st), whsem_last_error());
    return sem;
}

// ---- the holder: takes the ticket, says so, and waits to be killed ----------

[[noreturn]] void HolderMain(int report_fd)
{
    whsem_sem sem = OpenName(0);
    whsem_ticket t;
    whsem_status st = whsem_acquire(sem, g_cfg.timeout_ms, 0, &t);
    if (st != WHSEM_OK) wb::die("holder: whsem_acquire: %s: %s", whsem_status_name(st), whsem_last_error());
    char c = 'h';
    wb::write_full(report_fd, &c, 1);
    for (;;) pause();
}

// ---- the waiter: one acquisition per command, reports when it holds ------------

struct CallbackWait {
    sem_t done;
    int64_t at;
    whsem_status status;
    whsem_ticket ticket;
};

void WHSEM_CALL OnAcquired(whsem_op op, whsem_status st, void *user_data)
{
    auto *w = static_cast<CallbackWait *>(user_data);
    w->at = NowNs();
    w->ticket = 0;
    if (st == WHSEM_OK) st = whsem_op_take_ticket(op, &w->ticket);
    w->status = st;
    whsem_op_free(op);
    sem_post(&w->done);
}

// Waits for one ticket the way kind says; the time it held it, or -1.
int64_t WaitOnce(Kind kind, whsem_sem sem, CallbackWait *cbw)
{
    whsem_ticket t = 0;
    whsem_status st;
    int64_t at = 0;
    if (kind == kBlocking) {
        st = whsem_acquire(sem, g_cfg.timeout_ms, 0, &t);
        at = NowNs();
    } else if (kind == kCallback) {
        whsem_op op;
        st = whsem_acquire_async(sem, g_cfg.timeout_ms, 0, OnAcquired, cbw, &op);
        if (st == WHSEM_OK) {
            while (sem_wait(&cbw->done) != 0 && errno == EINTR) {
            }
            st = cbw->status;
            t = cbw->ticket;
            at = cbw->at;
        }
    } else {
        whsem_op op;
        st = whsem_acquire_async(sem, g_cfg.timeout_ms, 0, nullptr, nullptr, &op);
        if (st == WHSEM_OK) {
            st = whsem_op_wait(op, WHSEM_INFINITE);
            at = NowNs();
            if (st == WHSEM_OK) st = whsem_op_take_ticket(op, &t);
            whsem_op_free(op);
        }
    }
    if (st != WHSEM_OK) return -1;
    whsem_release(t);
    return at;
}

// Commands: 'w' wait for the ticket (it answers 'a' when about to wait,
// then the time it held the ticket), 'q' quit.
[[noreturn]] void WaiterMain(Kind kind, int cmd_fd, int report_fd)
{
    whsem_sem sem = OpenName(g_cfg.check_ms);
    CallbackWait cbw;
    sem_init(&cbw.done, 0, 0);
    char cmd;
    while (wb::read_full(cmd_fd, &cmd, 1) && cmd == 'w') {
        char a = 'a';
        wb::write_full(report_fd, &a, 1);
        int64_t at = WaitOnce(kind, sem, &cbw);
        wb::write_full(report_fd, &at, sizeof at);
    }
    whsem_close(sem);
    _exit(0);
}

void Pipe(int fds[2])
{
    if (pipe(fds) != 0) wb::die("pipe: %s", strerror(errno));
}

pid_t Spawn()
{
    fflush(stdout);
    fflush(stderr);
    pid_t p = fork();
    if (p < 0) wb::die("fork: %s", strerror(errno));
    if (p > 0) wb::child_remember(p);
    return p;
}

void Reap(pid_t p)
{
    int status;
    while (waitpid(p, &status, 0) < 0 && errno == EINTR) {
    }
    wb::child_forget(p);
}

// One kind of waiter, g_cfg.kills rounds: the latencies in ms, and the
// rounds in which the waiter did not get the ticket.
std::vector<double> RunKind(Kind kind, long *misses)
{
    int cmd[2], rep[2];
    Pipe(cmd);
    Pipe(rep);
    pid_t waiter = Spawn();
    if (waiter == 0) {
        wb::child_setup({cmd[1], rep[0]});
        WaiterMain(kind, cmd[0], rep[1]);
    }
    close(cmd[0]);
    close(rep[1]);
    std::mt19937_64 rng((uint64_t)NowNs());
    std::vector<double> lat;
    *misses = 0;
    for (long k = 0; k < g_cfg.kills; k++) {
        int hp[2];
        Pipe(hp);
        pid_t holder = Spawn();
        if (holder == 0) {
            wb::child_setup({hp[0], cmd[1], rep[0]});
            HolderMain(hp[1]);
        }
        close(hp[1]);
        char c;
        if (!ReadWithin(hp[0], &c, 1, g_cfg.timeout_ms)) wb::die("round %ld: the holder got no ticket", k);
        close(hp[0]);
        c = 'w';
        wb::write_full(cmd[1], &c, 1);
        if (!ReadWithin(rep[0], &c, 1, g_cfg.timeout_ms)) wb::die("round %ld: the waiter is gone", k);
        // Asleep by then: its first look takes microseconds.
        SleepNs(1000000 + (int64_t)(rng() % (uint64_t)((g_cfg.delay_ms - 1) * 1000000 + 1)));
        int64_t killed = NowNs();
        kill(holder, SIGKILL);
        int64_t at;
        bool got = ReadWithin(rep[0], &at, sizeof at, g_cfg.timeout_ms + 5000);
        Reap(holder);
        if (!got) wb::die("round %ld: no answer from the waiter", k);
        if (at < 0) (*misses)++;
        else lat.push_back((double)(at - killed) / 1e6);
    }
    char q = 'q';
    wb::write_full(cmd[1], &q, 1);
    close(cmd[1]);
    Reap(waiter);
    close(rep[0]);
    return lat;
}

int ParseArgs(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a == "--help" || a == "-h" || i + 1 >= argc) {
            printf("usage: whsem_bench_recovery [--kills N] [--waiters blocking,callback,op_wait]\n"
                   "         [--check-ms N (the waiter's abandonment_check_ms; 0 = default)]\n"
                   "         [--delay-ms N (kill 1..N ms after the waiter starts)] [--timeout-ms N]\n");
            return a == "--help" || a == "-h" ? 0 : 2;
        }
        const char *v = argv[++i];
        bool ok = true;
        if (a == "--kills") ok = wb::parse_long(v, 1, 10000000, &g_cfg.kills);
        else if (a == "--check-ms") ok = wb::parse_long(v, -1, 3600000, &g_cfg.check_ms);
        else if (a == "--delay-ms") ok = wb::parse_long(v, 1, 60000, &g_cfg.delay_ms);
        else if (a == "--timeout-ms") ok = wb::parse_long(v, 1, 3600000, &g_cfg.timeout_ms);
        else if (a == "--waiters") {
            g_cfg.kinds.clear();
            std::string list = std::string(v) + ",";
            for (size_t p = 0, e; ok && (e = list.find(',', p)) != std::string::npos; p = e + 1) {
                std::string k = list.substr(p, e - p);
                ok = false;
                for (int j = 0; j < 3; j++)
                    if (k == kKindName[j]) {
                        g_cfg.kinds.push_back((Kind)j);
                        ok = true;
                    }
            }
        } else {
            ok = false;
        }
        if (!ok) {
            fprintf(stderr, "bad option or value: %s %s\n", a.c_str(), v);
            return 2;
        }
    }
    return -1;
}

} // namespace

int main(int argc, char **argv)
{
    int rc = ParseArgs(argc, argv);
    if (rc >= 0) return rc;
    wb::install_cleanup("whsem_bench_recovery");
    g_cfg.name = wb::unique_name("recovery");
    wb::res_remember(wb::ResKind::WhsemName, g_cfg.name);
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, nullptr, _IOLBF, 0);
    printf("## Recovery after a holder's SIGKILL (tests/bench/bench_recovery.cpp)\n\n");
    printf("%ld kills per waiter, each 1-%ld ms after the waiter starts waiting; the waiter's "
           "abandonment_check_ms %ld%s\n\n",
           g_cfg.kills, g_cfg.delay_ms, g_cfg.check_ms, g_cfg.check_ms == 0 ? " (default, 100 ms)" : "");
    printf("| kill -> | kills | p50 ms | p99 ms | max ms | no ticket |\n|---|---|---|---|---|---|\n");
    int failed = 0;
    for (Kind k : g_cfg.kinds) {
        long misses;
        wb::Percentiles p = wb::percentiles(RunKind(k, &misses));
        printf("| %s | %zu | %.3f | %.3f | %.3f | %ld |\n", kKindWhat[k], p.n, p.p50, p.p99, p.max, misses);
        failed += misses != 0;
    }
    return failed ? 1 : 0;
}
