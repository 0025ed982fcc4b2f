// SPDX-License-Identifier: MIT
/*
 * The PostgreSQL backend's figures (issue 15): (a) an uncontended acquire
 * + release, (b) 8 processes on max 2 each holding 1 ms: throughput and
 * fairness (the smallest share over the largest), (c) from a SIGKILL of a
 * holder to a waiter of another process holding its ticket, (d) a server
 * restart while every ticket is held and watched: how many hold at once,
 * and when the old holders are told. Not a test: it prints, it never fails
 * on a figure. Run by bench_pg.sh and pg_compare.sh against a throw-away
 * cluster; pg_compare.sh runs DistributedLock's side (dl_compare/) with the
 * same parameters and the same definitions (nearest-rank percentiles).
 *
 *   whsem_bench_pg [OPTIONS] CONNINFO [SECONDS]
 *     --parts abcd      which figures (default abc: (d) needs --restart)
 *     --iterations N    (a): timed pairs (2000), after --warmup N (200)
 *     --seconds S       (b): duration (5; also the second positional)
 *     --procs N         (b): processes (8)
 *     --kills K         (c): kills (20)
 *     --restart CMD     (d): a shell command that restarts the server
 *     --cap S           (d): how long to watch at most (30)
 *     --triers N        (d): processes trying throughout (4)
 *     --results LABEL   print "RESULT LABEL key value" lines on stdout and
 *                       the readable lines on stderr
 */
#include "whsem.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *backend;
static const char *results; /* label, or NULL for the readable lines alone */
static FILE *human;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
    struct timespec t = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&t, &t) != 0) {
    }
}

static void result(const char *key, double value)
{
    if (results) printf("RESULT %s %s %.3f\n", results, key, value);
}

static whsem_sem open_sem(const char *name, int32_t max)
{
    whsem_open_options o;
    memset(&o, 0, sizeof o);
    o.struct_size = sizeof o;
    o.backend = backend;
    whsem_sem s;
    if (whsem_open(name, max, &o, &s) != WHSEM_OK) {
        fprintf(stderr, "open %s: %s\n", name, whsem_last_error());
        exit(1);
    }
    return s;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nearest rank, as dl_compare's Stats.Percentile: both sides of a ratio
 * must mean the same thing by "p99". */
static double percentile(const double *sorted, size_t n, double p)
{
    if (n == 0) return 0;
    long i = (long)((p / 100.0) * (double)n + 0.999999999) - 1;
    if (i < 0) i = 0;
    if ((size_t)i >= n) i = (long)n - 1;
    return sorted[i];
}

static void *shared(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    return p;
}

static void uncontended(int n, int warm)
{
    char name[64];
    snprintf(name, sizeof name, "bench-pg-a-%d", (int)getpid());
    whsem_sem s = open_sem(name, 2);
    double *us = malloc(sizeof *us * (size_t)n);
    for (int i = -warm; i < n; i++) {
        double t0 = now_s();
        whsem_ticket t;
        if (whsem_acquire(s, 0, 0, &t) != WHSEM_OK) exit(2);
        whsem_release(t);
        if (i >= 0) us[i] = (now_s() - t0) * 1e6;
    }
    qsort(us, (size_t)n, sizeof us[0], cmp);
    fprintf(human, "(a) uncontended try-acquire + release: median %.0f us, p99 %.0f us (%d pairs after %d warm-up)\n",
            percentile(us, (size_t)n, 50), percentile(us, (size_t)n, 99), n, warm);
    result("a_median_us", percentile(us, (size_t)n, 50));
    result("a_p99_us", percentile(us, (size_t)n, 99));
    free(us);
    whsem_close(s);
}

enum { SAMPLES = 1 << 16 };

struct contention {
    _Atomic int go; /* 0 get ready, 1 run, 2 stop */
    _Atomic int ready;
    long counts[64];
    double held_s[64];
    long nsamples[64];
    float samples[][SAMPLES]; /* per process: ms from asking to holding */
};

static void contended(int procs, double seconds)
{
    enum { MAX = 2 };
    char name[64];
    snprintf(name, sizeof name, "bench-pg-b-%d", (int)getpid());
    struct contention *c = shared(sizeof *c + sizeof c->samples[0] * (size_t)procs);
    pid_t pids[64];
    for (int p = 0; p < procs; p++) {
        pids[p] = fork();
        if (pids[p] == 0) {
            whsem_sem s = open_sem(name, MAX);
            /* A hold of 1 ms, not 1 ms plus the default 50 us of timer
             * slack: the slack is not the library's (the mean hold is
             * printed). */
            prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
            atomic_fetch_add(&c->ready, 1);
            while (atomic_load(&c->go) == 0) usleep(100);
            while (atomic_load(&c->go) == 1) {
                whsem_ticket t;
                double t0 = now_s();
                if (whsem_acquire(s, 1000, 0, &t) != WHSEM_OK) continue;
                double t1 = now_s(), waited = (t1 - t0) * 1e3;
                sleep_s(0.001);
                if (atomic_load(&c->go) == 1) {
                    c->held_s[p] += now_s() - t1;
                    c->counts[p]++;
                    if (c->nsamples[p] < SAMPLES) c->samples[p][c->nsamples[p]++] = (float)waited;
                }
                whsem_release(t);
            }
            _exit(0);
        }
    }
    while (atomic_load(&c->ready) < procs) usleep(1000);
    sleep_s(0.3);
    atomic_store(&c->go, 1);
    double t0 = now_s();
    sleep_s(seconds);
    atomic_store(&c->go, 2);
    double el = now_s() - t0;
    for (int p = 0; p < procs; p++) waitpid(pids[p], NULL, 0);
    long total = 0, lo = -1, hi = 0, ns = 0;
    double held = 0;
    for (int p = 0; p < procs; p++) {
        long n = c->counts[p];
        total += n;
        held += c->held_s[p];
        ns += c->nsamples[p];
        if (lo < 0 || n < lo) lo = n;
        if (n > hi) hi = n;
    }
    double *waits = malloc(sizeof *waits * (size_t)(ns ? ns : 1));
    size_t k = 0;
    for (int p = 0; p < procs; p++)
        for (long i = 0; i < c->nsamples[p]; i++) waits[k++] = c->samples[p][i];
    qsort(waits, k, sizeof waits[0], cmp);
    double fair = hi ? (double)lo / (double)hi : 0;
    fprintf(human,
            "(b) %d processes, max %d, holding 1 ms: %.0f acquisitions/s (ideal 2000), fairness "
            "min/max %.2f (%ld ... %ld per process), wait p50 %.1f ms p99 %.1f ms, mean hold %.3f ms\n",
            procs, MAX, (double)total / el, fair, lo, hi, percentile(waits, k, 50), percentile(waits, k, 99),
            total ? held * 1e3 / (double)total : 0);
    result("b_per_s", (double)total / el);
    result("b_fairness", fair);
    result("b_wait_p50_ms", percentile(waits, k, 50));
    result("b_wait_p99_ms", percentile(waits, k, 99));
    free(waits);
    munmap(c, sizeof *c + sizeof c->samples[0] * (size_t)procs);
}

/* One kill: the holder is a child, the waiter this process, queued (its
 * acquisition started 100 ms before the kill, as dl_compare's). */
static double one_kill(_Atomic int *held, int round)
{
    char name[64];
    snprintf(name, sizeof name, "bench-pg-c-%d-%d", (int)getpid(), round);
    atomic_store(held, 0);
    pid_t holder = fork();
    if (holder == 0) {
        whsem_sem s = open_sem(name, 1);
        whsem_ticket t;
        if (whsem_acquire(s, 30000, 0, &t) != WHSEM_OK) _exit(1);
        atomic_store(held, 1);
        pause();
        _exit(0);
    }
    while (!atomic_load(held)) usleep(100);
    whsem_sem s = open_sem(name, 1);
    whsem_op op;
    whsem_acquire_async(s, 60000, 0, NULL, NULL, &op);
    sleep_s(0.1);
    double t0 = now_s();
    kill(holder, SIGKILL);
    whsem_status st = whsem_op_wait(op, WHSEM_INFINITE);
    double ms = (now_s() - t0) * 1e3;
    waitpid(holder, NULL, 0);
    whsem_ticket t;
    if (st == WHSEM_OK && whsem_op_take_ticket(op, &t) == WHSEM_OK) whsem_release(t);
    whsem_op_free(op);
    whsem_close(s);
    return st == WHSEM_OK ? ms : 60000;
}

static void recovery(int rounds)
{
    double *ms = malloc(sizeof *ms * (size_t)rounds);
    _Atomic int *held = shared(4096);
    {
        /* The first connections open before the first kill, as in
         * dl_compare: a wait that times out behind a ticket of our own. */
        char name[64];
        snprintf(name, sizeof name, "bench-pg-c-%d-warm", (int)getpid());
        whsem_sem s = open_sem(name, 1);
        whsem_ticket mine, other;
        if (whsem_acquire(s, 0, 0, &mine) != WHSEM_OK) exit(2);
        if (whsem_acquire(s, 50, 0, &other) == WHSEM_OK) whsem_release(other);
        whsem_release(mine);
        whsem_close(s);
    }
    for (int r = 0; r < rounds; r++) ms[r] = one_kill(held, r);
    qsort(ms, (size_t)rounds, sizeof ms[0], cmp);
    fprintf(human,
            "(c) SIGKILL of a holder -> a waiter of another process holds its ticket: p50 %.2f ms, "
            "p99 %.2f ms, max %.2f ms (%d kills)\n",
            percentile(ms, (size_t)rounds, 50), percentile(ms, (size_t)rounds, 99), ms[rounds - 1], rounds);
    result("c_p50_ms", percentile(ms, (size_t)rounds, 50));
    result("c_p99_ms", percentile(ms, (size_t)rounds, 99));
    result("c_max_ms", ms[rounds - 1]);
    result("c_kills", rounds);
    munmap(held, 4096);
    free(ms);
}

struct restart {
    _Atomic int go;      /* 0 get ready, 2 stop */
    _Atomic int ready;   /* triers trying */
    _Atomic int holders; /* processes that believe they hold a ticket now */
    _Atomic int max_holders;
    _Atomic int holding; /* old holders that got their ticket */
    _Atomic double restart_at;
    _Atomic double first_after; /* first acquisition begun after the restart */
    _Atomic double told[8];     /* when each old holder was told, 0 before */
};

static struct restart *rs;

static void enter_holder(void)
{
    int now = atomic_fetch_add(&rs->holders, 1) + 1;
    int seen = atomic_load(&rs->max_holders);
    while (now > seen && !atomic_compare_exchange_weak(&rs->max_holders, &seen, now)) {
    }
}

static void on_lost(whsem_ticket t, whsem_status st, void *ud)
{
    (void)t;
    if (st != WHSEM_E_TICKET_LOST) return;
    atomic_store(&rs->told[(intptr_t)ud], now_s());
    atomic_fetch_sub(&rs->holders, 1);
}

static void restart_server(const char *cmd, double cap, int triers)
{
    enum { MAX = 2 };
    char name[64];
    snprintf(name, sizeof name, "bench-pg-d-%d", (int)getpid());
    rs = shared(sizeof *rs);
    pid_t pids[2 + 64];
    int n = 0;
    for (intptr_t i = 0; i < MAX; i++) {
        pids[n++] = fork();
        if (pids[n - 1] == 0) {
            whsem_sem s = open_sem(name, MAX);
            whsem_ticket t;
            if (whsem_acquire(s, 30000, 0, &t) != WHSEM_OK) _exit(1);
            enter_holder();
            if (whsem_ticket_watch(t, 0, on_lost, (void *)i) != WHSEM_OK) _exit(2);
            atomic_fetch_add(&rs->holding, 1);
            /* Keeps believing it holds until told otherwise. */
            while (atomic_load(&rs->go) != 2) usleep(10000);
            whsem_release(t);
            whsem_close(s);
            _exit(0);
        }
        while (atomic_load(&rs->holding) < (int)i + 1) usleep(1000);
    }
    for (int i = 0; i < triers; i++) {
        pids[n++] = fork();
        if (pids[n - 1] == 0) {
            whsem_sem s = open_sem(name, MAX);
            atomic_fetch_add(&rs->ready, 1);
            while (atomic_load(&rs->go) != 2) {
                whsem_ticket t;
                double t0 = now_s();
                if (whsem_acquire(s, 500, 0, &t) != WHSEM_OK) {
                    usleep(10000); /* unavailable during the restart, or a timeout */
                    continue;
                }
                enter_holder();
                double at = atomic_load(&rs->restart_at), zero = 0;
                if (at != 0 && t0 > at) atomic_compare_exchange_strong(&rs->first_after, &zero, now_s());
                sleep_s(0.002);
                atomic_fetch_sub(&rs->holders, 1);
                whsem_release(t);
            }
            whsem_close(s);
            _exit(0);
        }
    }
    while (atomic_load(&rs->ready) < triers) usleep(1000);
    sleep_s(0.5);

    double t0 = now_s();
    atomic_store(&rs->restart_at, t0);
    pid_t sh = fork();
    if (sh == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    /* Sample the number of believed holders while the restart runs and
     * after; max_holders, kept by every entering process, catches what a
     * sample could miss. */
    double over = 0, last = t0, restart_ms = -1, first_over = -1, last_over = -1;
    for (;;) {
        double now = now_s();
        if (atomic_load(&rs->holders) > MAX) {
            over += now - last;
            if (first_over < 0) first_over = now;
            last_over = now;
        }
        last = now;
        int status;
        if (restart_ms < 0 && waitpid(sh, &status, WNOHANG) == sh) {
            restart_ms = (now - t0) * 1e3;
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                fprintf(stderr, "(d) the restart command failed (status %d)\n", status);
        }
        int all = 1;
        for (int i = 0; i < MAX; i++) all &= atomic_load(&rs->told[i]) != 0;
        double first = atomic_load(&rs->first_after);
        if ((restart_ms >= 0 && all && first != 0 && now - first > 1) || now - t0 > cap) break;
        sleep_s(0.0002);
    }
    if (restart_ms < 0) waitpid(sh, NULL, 0);
    atomic_store(&rs->go, 2);
    for (int i = 0; i < n; i++) waitpid(pids[i], NULL, 0);

    double told_all = 0, told_first = -1;
    for (int i = 0; i < MAX; i++) {
        double t = atomic_load(&rs->told[i]);
        double ms = t == 0 ? -1 : (t - t0) * 1e3;
        if (ms < 0 || told_all < 0) told_all = -1;
        else if (ms > told_all) told_all = ms;
        if (ms >= 0 && (told_first < 0 || ms < told_first)) told_first = ms;
    }
    fprintf(human, "(d) old holders told at");
    for (int i = 0; i < MAX; i++) {
        double t = atomic_load(&rs->told[i]);
        if (t == 0) fprintf(human, " never");
        else fprintf(human, " %.0f", (t - t0) * 1e3);
    }
    fprintf(human, " ms after the restart began\n");
    double first = atomic_load(&rs->first_after);
    double resumed = first == 0 ? -1 : (first - t0) * 1e3;
    fprintf(human,
            "(d) server restart (took %.0f ms) while %d of %d tickets were held and watched, %d processes "
            "trying: max holders %d, over the max for %.0f ms; old holders all told %.0f ms after the "
            "restart began (-1: not within %.0f s); acquisitions resumed at %.0f ms\n",
            restart_ms, MAX, MAX, triers, atomic_load(&rs->max_holders), over * 1e3, told_all, cap, resumed);
    result("d_max_holders", atomic_load(&rs->max_holders));
    result("d_over_ms", over * 1e3);
    result("d_over_window_ms", first_over < 0 ? 0 : (last_over - first_over) * 1e3);
    result("d_told_all_ms", told_all);
    result("d_told_first_ms", told_first);
    result("d_resumed_ms", resumed);
    result("d_restart_ms", restart_ms);
    result("d_cap_s", cap);
    munmap(rs, sizeof *rs);
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [--parts abcd] [--iterations N] [--warmup N] [--seconds S] [--procs N] [--kills K]\n"
            "          [--restart CMD] [--cap S] [--triers N] [--results LABEL] CONNINFO [SECONDS]\n",
            argv0);
    exit(2);
}

int main(int argc, char **argv)
{
    const char *parts = "abc", *restart = NULL;
    int iterations = 2000, warmup = 200, procs = 8, kills = 20, triers = 4;
    double seconds = 5, cap = 30;
    int pos = 0;
    human = stdout;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) == 0) {
            if (i + 1 >= argc) usage(argv[0]);
            const char *v = argv[++i];
            if (!strcmp(a, "--parts")) parts = v;
            else if (!strcmp(a, "--iterations")) iterations = atoi(v);
            else if (!strcmp(a, "--warmup")) warmup = atoi(v);
            else if (!strcmp(a, "--seconds")) seconds = atof(v);
            else if (!strcmp(a, "--procs")) procs = atoi(v);
            else if (!strcmp(a, "--kills")) kills = atoi(v);
            else if (!strcmp(a, "--restart")) restart = v;
            else if (!strcmp(a, "--cap")) cap = atof(v);
            else if (!strcmp(a, "--triers")) triers = atoi(v);
            else if (!strcmp(a, "--results")) results = v;
            else usage(argv[0]);
        } else if (pos == 0) {
            backend = a;
            pos++;
        } else if (pos == 1) {
            seconds = atof(a);
            pos++;
        } else {
            usage(argv[0]);
        }
    }
    if (!backend || iterations < 1 || procs < 1 || procs > 64 || kills < 1 || triers < 0 || triers > 64)
        usage(argv[0]);
    if (results) human = stderr;
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (strchr(parts, 'a')) uncontended(iterations, warmup);
    if (strchr(parts, 'b')) contended(procs, seconds);
    if (strchr(parts, 'c')) recovery(kills);
    if (strchr(parts, 'd')) {
        if (!restart) {
            fprintf(stderr, "(d) needs --restart CMD\n");
            return 2;
        }
        restart_server(restart, cap, triers);
    }
    return 0;
}
