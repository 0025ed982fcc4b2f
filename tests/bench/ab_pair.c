// SPDX-License-Identifier: MIT
/*
 * Two or more builds of libwhsem, side by side in one process: the
 * uncontended acquire + release of figure (a), timed in short rounds that
 * take turns between the builds, so that what the machine does meanwhile
 * (another tenant, the clock speed) falls on all of them alike. On this
 * kind of machine runs of whsem_bench move by 15% from one to the next,
 * while the ratios printed here agree within 1% from run to run; it is
 * what tells whether a change costs the pair 2% or 5%.
 *
 *   whsem_ab_pair [-r ROUNDS] [-n PAIRS] LIB_A LIB_B [LIB...]
 *
 * Each LIB is the path of a libwhsem.so.1, loaded into a namespace of its
 * own (dlmopen), so that two builds of the same soname do not meet. Prints
 * each one's median, 10th percentile and best of the rounds (ns per pair),
 * and each one's ratios to the first.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "whsem.h"

#define MAX_LIBS 8

typedef whsem_status (*open_fn)(const char *, int32_t, const whsem_open_options *, whsem_sem *);
typedef whsem_status (*acquire_fn)(whsem_sem, int64_t, whsem_cancel, whsem_ticket *);
typedef whsem_status (*release_fn)(whsem_ticket);
typedef whsem_status (*close_fn)(whsem_sem);
typedef whsem_status (*unlink_fn)(const char *, uint32_t);

struct build {
    const char *path;
    acquire_fn acquire;
    release_fn release;
    close_fn close;
    unlink_fn unlink;
    whsem_sem sem;
    char name[64];
    double *ns; /* per round */
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void *sym(void *lib, const char *path, const char *name)
{
    void *p = dlsym(lib, name);
    if (!p) {
        fprintf(stderr, "whsem_ab_pair: %s has no %s\n", path, name);
        exit(2);
    }
    return p;
}

static void load(struct build *b, int i)
{
    void *lib = dlmopen(LM_ID_NEWLM, b->path, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "whsem_ab_pair: %s\n", dlerror());
        exit(2);
    }
    open_fn open = (open_fn)sym(lib, b->path, "whsem_open");
    b->acquire = (acquire_fn)sym(lib, b->path, "whsem_acquire");
    b->release = (release_fn)sym(lib, b->path, "whsem_release");
    b->close = (close_fn)sym(lib, b->path, "whsem_close");
    b->unlink = (unlink_fn)sym(lib, b->path, "whsem_unlink");
    snprintf(b->name, sizeof b->name, "whsem_ab_pair.%d.%d", (int)getpid(), i);
    whsem_status st = open(b->name, 1, NULL, &b->sem);
    if (st != WHSEM_OK) {
        fprintf(stderr, "whsem_ab_pair: whsem_open with %s: status %d\n", b->path, (int)st);
        exit(2);
    }
}

static double round_ns(struct build *b, long pairs)
{
    uint64_t t0 = now_ns();
    for (long j = 0; j < pairs; j++) {
        whsem_ticket t;
        if (b->acquire(b->sem, 0, 0, &t) != WHSEM_OK || b->release(t) != WHSEM_OK) {
            fprintf(stderr, "whsem_ab_pair: a pair failed with %s\n", b->path);
            exit(2);
        }
    }
    return (double)(now_ns() - t0) / (double)pairs;
}

int main(int argc, char **argv)
{
    /* Each namespace takes static TLS that the default reserve may not
     * have for three or more: ask the loader for more, once. */
    if (!getenv("WHSEM_AB_PAIR_REEXEC")) {
        setenv("WHSEM_AB_PAIR_REEXEC", "1", 1);
        setenv("GLIBC_TUNABLES", "glibc.rtld.optional_static_tls=65536", 1);
        execv("/proc/self/exe", argv);
    }
    int rounds = 300;
    long pairs = 200000;
    int opt;
    while ((opt = getopt(argc, argv, "r:n:")) != -1) {
        if (opt == 'r') rounds = atoi(optarg);
        else if (opt == 'n') pairs = atol(optarg);
        else goto usage;
    }
    int n = argc - optind;
    if (n < 2 || n > MAX_LIBS || rounds < 1 || pairs < 1) goto usage;

    struct build b[MAX_LIBS];
    memset(b, 0, sizeof b);
    for (int i = 0; i < n; i++) {
        b[i].path = argv[optind + i];
        b[i].ns = calloc((size_t)rounds, sizeof(double));
        if (!b[i].ns) return 2;
        load(&b[i], i);
    }
    for (int i = 0; i < n; i++) round_ns(&b[i], pairs); /* warm up */
    for (int r = 0; r < rounds; r++)
        for (int i = 0; i < n; i++) b[i].ns[r] = round_ns(&b[i], pairs);

    printf("%d rounds of %ld pairs each, taking turns; ns per acquire + release\n", rounds, pairs);
    double med[MAX_LIBS], p10[MAX_LIBS], best[MAX_LIBS];
    for (int i = 0; i < n; i++) {
        qsort(b[i].ns, (size_t)rounds, sizeof(double), by_value);
        med[i] = b[i].ns[rounds / 2];
        p10[i] = b[i].ns[rounds / 10];
        best[i] = b[i].ns[0];
        printf("  %-40s median %6.2f  p10 %6.2f  best %6.2f\n", b[i].path, med[i], p10[i], best[i]);
    }
    for (int i = 1; i < n; i++)
        printf("  %s / %s: median %.3f  p10 %.3f  best %.3f\n", b[i].path, b[0].path,
               med[i] / med[0], p10[i] / p10[0], best[i] / best[0]);
    for (int i = 0; i < n; i++) {
        b[i].close(b[i].sem);
        b[i].unlink(b[i].name, 0);
        free(b[i].ns);
    }
    return 0;
usage:
    fprintf(stderr, "usage: whsem_ab_pair [-r ROUNDS] [-n PAIRS] LIB_A LIB_B [LIB...]\n");
    return 2;
}
