// SPDX-License-Identifier: MIT
/*
 * The PostgreSQL backend's figures (issue 15): (a) an uncontended acquire
 * + release, (b) 8 processes on max 2 each holding 1 ms: throughput and
 * fairness (the smallest share over the largest), (c) from a SIGKILL of a
 * holder to a waiter of another process holding its ticket. Not a test:
 * it prints, it never fails on a figure. Run by bench_pg.sh against a
 * throw-away cluster.
 *
 *   whsem_bench_pg CONNINFO [SECONDS]
 */
#include "whsem.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *backend;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
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

static void uncontended(void)
{
    char name[64];
    snprintf(name, sizeof name, "bench-pg-a-%d", (int)getpid());
    whsem_sem s = open_sem(name, 1);
    enum { BATCHES = 21, PER = 200 };
    double us[BATCHES];
    for (int b = 0; b < BATCHES; b++) {
        double t0 = now_s();
        for (int i = 0; i < PER; i++) {
            whsem_ticket t;
            if (whsem_acquire(s, 0, 0, &t) != WHSEM_OK) exit(2);
            whsem_release(t);
        }
        us[b] = (now_s() - t0) / PER * 1e6;
    }
    qsort(us, BATCHES, sizeof us[0], cmp);
    printf("(a) uncontended try-acquire + release: median %.0f us (batches of %d, min %.0f, max %.0f)\n",
           us[BATCHES / 2], PER, us[0], us[BATCHES - 1]);
    whsem_close(s);
}

static void contended(double seconds)
{
    enum { PROCS = 8, MAX = 2 };
    char name[64];
    snprintf(name, sizeof name, "bench-pg-b-%d", (int)getpid());
    _Atomic long *counts = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    _Atomic int *go = (_Atomic int *)(counts + PROCS);
    pid_t pids[PROCS];
    for (int p = 0; p < PROCS; p++) {
        pids[p] = fork();
        if (pids[p] == 0) {
            whsem_sem s = open_sem(name, MAX);
            while (atomic_load(go) == 0) usleep(100);
            while (atomic_load(go) == 1) {
                whsem_ticket t;
                if (whsem_acquire(s, 1000, 0, &t) != WHSEM_OK) continue;
                struct timespec hold = {0, 1000000};
                nanosleep(&hold, NULL);
                if (atomic_load(go) == 1) atomic_fetch_add(&counts[p], 1);
                whsem_release(t);
            }
            _exit(0);
        }
    }
    sleep(1); /* every process open and connected */
    atomic_store(go, 1);
    double t0 = now_s();
    usleep((useconds_t)(seconds * 1e6));
    atomic_store(go, 2);
    double el = now_s() - t0;
    for (int p = 0; p < PROCS; p++) waitpid(pids[p], NULL, 0);
    long total = 0, lo = -1, hi = 0;
    for (int p = 0; p < PROCS; p++) {
        long c = atomic_load(&counts[p]);
        total += c;
        if (lo < 0 || c < lo) lo = c;
        if (c > hi) hi = c;
    }
    printf("(b) 8 processes, max 2, holding 1 ms: %.0f acquisitions/s (ideal 2000), fairness "
           "min/max %.2f (%ld ... %ld per process)\n",
           (double)total / el, hi ? (double)lo / (double)hi : 0, lo, hi);
}

static void recovery(int rounds)
{
    double ms[64];
    _Atomic int *held = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    for (int r = 0; r < rounds; r++) {
        char name[64];
        snprintf(name, sizeof name, "bench-pg-c-%d-%d", (int)getpid(), r);
        atomic_store(held, 0);
        pid_t holder = fork();
        if (holder == 0) {
            whsem_sem s = open_sem(name, 1);
            whsem_ticket t;
            if (whsem_acquire(s, 0, 0, &t) != WHSEM_OK) _exit(1);
            atomic_store(held, 1);
            pause();
            _exit(0);
        }
        while (!atomic_load(held)) usleep(100);
        whsem_sem s = open_sem(name, 1);
        whsem_op op;
        whsem_acquire_async(s, WHSEM_INFINITE, 0, NULL, NULL, &op);
        usleep(20000); /* queued in the server */
        double t0 = now_s();
        kill(holder, SIGKILL);
        whsem_op_wait(op, WHSEM_INFINITE);
        ms[r] = (now_s() - t0) * 1e3;
        waitpid(holder, NULL, 0);
        whsem_ticket t;
        if (whsem_op_take_ticket(op, &t) == WHSEM_OK) whsem_release(t);
        whsem_op_free(op);
        whsem_close(s);
    }
    qsort(ms, (size_t)rounds, sizeof ms[0], cmp);
    printf("(c) SIGKILL of a holder -> a waiter of another process holds its ticket: p50 %.2f ms, "
           "max %.2f ms (%d kills)\n",
           ms[rounds / 2], ms[rounds - 1], rounds);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s CONNINFO [SECONDS]\n", argv[0]);
        return 2;
    }
    backend = argv[1];
    double seconds = argc > 2 ? atof(argv[2]) : 5;
    uncontended();
    contended(seconds);
    recovery(20);
    return 0;
}
