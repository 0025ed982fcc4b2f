/* SPDX-License-Identifier: MIT */
/*
 * The commands of the other process of a multi-process test (commands.h).
 * Plain C on the public ABI, so that the Windows helper program and the
 * Linux suites' forked children run exactly the same steps.
 */
#include "commands.h"

#include "backend_under_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#include <windows.h>
#else
#include <time.h>
#include <unistd.h>
#endif

int whtest_fail(const char *what, whsem_status st, int code)
{
    fprintf(stderr, "helper: %s: %s: %s\n", what, whsem_status_name(st), whsem_last_error());
    return code;
}

/* The test kills us: it wants a process that holds what it took. */
static void ready_then_sleep(void)
{
    printf("ready\n");
    fflush(stdout);
    for (;;) {
#ifdef _WIN32
        Sleep(INFINITE);
#else
        pause();
#endif
    }
}

static unsigned long long now_ms(void)
{
#ifdef _WIN32
    return GetTickCount64();
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000u + (unsigned long long)ts.tv_nsec / 1000000u;
#endif
}

static int cmd_asyncrace(whsem_sem s, int iter, unsigned seed)
{
    srand(seed);
    for (int i = 0; i < iter; i++) {
        whsem_ticket held;
        whsem_status hs = whsem_acquire(s, 5000, 0, &held);
        whsem_op op;
        whsem_status st = whsem_acquire_async(s, (rand() % 2) ? 1 : WHSEM_INFINITE, 0, NULL, NULL, &op);
        if (st != WHSEM_OK) return whtest_fail("start", st, 2);
        if (hs == WHSEM_OK) whsem_release(held);
        if (rand() % 2) whsem_op_cancel(op);
        if (rand() % 3 == 0) {
            if ((st = whsem_op_free(op)) != WHSEM_OK) return whtest_fail("free pending", st, 3);
            continue;
        }
        st = whsem_op_wait(op, 30000);
        if (st == WHSEM_OK) {
            whsem_ticket t;
            if ((st = whsem_op_take_ticket(op, &t)) != WHSEM_OK) return whtest_fail("take", st, 4);
            if ((st = whsem_release(t)) != WHSEM_OK) return whtest_fail("release", st, 4);
        } else if (st != WHSEM_CANCELED && st != WHSEM_TIMEOUT) {
            return whtest_fail("wait", st, 5);
        }
        if ((st = whsem_op_free(op)) != WHSEM_OK) return whtest_fail("free", st, 6);
    }
    return 0;
}

static void WHSEM_CALL ignore(whsem_op op, whsem_status st, void *ud) { (void)op, (void)st, (void)ud; }

/* ---- fault injection: a build with fault points dies where it is told ---- */

static void arm_fault(const char *point)
{
#ifdef _WIN32
    SetEnvironmentVariableA("WHSEM_FAULT_POINT", point);
#else
    setenv("WHSEM_FAULT_POINT", point, 1);
#endif
}

static void sleep_ms(int ms)
{
#ifdef _WIN32
    Sleep((DWORD)ms);
#else
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
#endif
}

/* The test's cue: a file it creates when it is time to go on. */
static void wait_for_file(const char *path)
{
    FILE *f;
    while (!(f = fopen(path, "r"))) sleep_ms(1);
    fclose(f);
}

/* fault POINT NAME MAX HELD: hold HELD tickets, then die at POINT while
 * opening (attach), acquiring or releasing. */
static int cmd_fault(const char *point, const char *name, int32_t max, int held)
{
    whsem_sem s;
    whsem_ticket t;
    if (strcmp(point, "attach") != 0) {
        if (whtest_open(name, max, NULL, &s) != WHSEM_OK) return 10;
        for (int i = 0; i < held; i++)
            if (whsem_acquire(s, 0, 0, &t) != WHSEM_OK) return 11;
    }
    arm_fault(point);
    if (whtest_open(name, max, NULL, &s) != WHSEM_OK) return 12;
    if (whsem_acquire(s, 0, 0, &t) != WHSEM_OK) return 13;
    if (strcmp(point, "release") == 0) whsem_release(t);
    return 50; /* the fault point did not fire */
}

/* faultscan NAME MAX GO: attached now, on cue look for dead holders and
 * die while reclaiming one. */
static int cmd_faultscan(const char *name, int32_t max, const char *go)
{
    whsem_sem s;
    size_t n;
    if (whtest_open(name, max, NULL, &s) != WHSEM_OK) return 10;
    wait_for_file(go);
    arm_fault("scan");
    whsem_query(s, NULL, NULL, 0, &n); /* a full scan finds the dead holder */
    return 50;
}

/* faulthandoff NAME GO: hold the only ticket, on cue release it to a
 * waiting process and die between the grant and the wake-up. */
static int cmd_faulthandoff(const char *name, const char *go)
{
    whsem_sem s;
    whsem_ticket t;
    if (whtest_open(name, 1, NULL, &s) != WHSEM_OK) return 10;
    if (whsem_acquire(s, 0, 0, &t) != WHSEM_OK) return 11;
    wait_for_file(go);
    arm_fault("handoff");
    whsem_release(t);
    return 50;
}

int whtest_command(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "helper: usage: see tests/library/commands.h\n");
        return WHTEST_USAGE;
    }
    const char *cmd = argv[0], *name = argv[1];
    if (strcmp(cmd, "fault") == 0)
        return argc == 5 ? cmd_fault(argv[1], argv[2], atoi(argv[3]), atoi(argv[4])) : WHTEST_USAGE;
    if (strcmp(cmd, "faultscan") == 0)
        return argc == 4 ? cmd_faultscan(argv[1], atoi(argv[2]), argv[3]) : WHTEST_USAGE;
    if (strcmp(cmd, "faulthandoff") == 0)
        return argc == 3 ? cmd_faulthandoff(argv[1], argv[2]) : WHTEST_USAGE;
    int32_t max = argc > 2 ? atoi(argv[2]) : 0;
    whsem_sem s = 0;
    whsem_status st = max > 0 ? whtest_open(name, max, NULL, &s) : whtest_open_existing(name, NULL, &s);
    if (st != WHSEM_OK) return whtest_fail("open", st, 1);

    if (strcmp(cmd, "hold") == 0 && argc == 4) {
        for (int i = 0; i < atoi(argv[3]); i++) {
            whsem_ticket t;
            if ((st = whsem_acquire(s, 0, 0, &t)) != WHSEM_OK) return whtest_fail("hold", st, 2);
        }
        ready_then_sleep();
    }
    if (strcmp(cmd, "open") == 0) ready_then_sleep();
    if (strcmp(cmd, "try") == 0) {
        whsem_ticket t;
        st = whsem_acquire(s, 0, 0, &t);
        if (st == WHSEM_OK) whsem_release(t);
        return st == WHSEM_TIMEOUT ? 0 : st == WHSEM_OK ? 2 : whtest_fail("try", st, 1);
    }
    if (strcmp(cmd, "wait") == 0 && argc == 4) {
        whsem_ticket t;
        unsigned long long start = now_ms();
        st = whsem_acquire(s, atoi(argv[3]), 0, &t);
        if (st != WHSEM_OK) return whtest_fail("wait", st, 3);
        printf("acquired after %llu ms\n", now_ms() - start);
        fflush(stdout);
        return whsem_release(t) == WHSEM_OK ? 0 : 4;
    }
    if (strcmp(cmd, "query") == 0) {
        whsem_info info = {sizeof info, 0, 0, 0, 0, 0, 0};
        size_t n;
        if ((st = whsem_query(s, &info, NULL, 0, &n)) != WHSEM_OK) return whtest_fail("query", st, 2);
        printf("free=%d waiters=%u holders=%u recoveries=%llu\n", info.free_count, info.waiters,
               info.holders, (unsigned long long)info.recoveries);
        return 0;
    }
    if (strcmp(cmd, "asyncrace") == 0 && argc == 5)
        return cmd_asyncrace(s, atoi(argv[3]), (unsigned)atoi(argv[4]));
    if (strcmp(cmd, "exitpending") == 0) {
        whsem_queue q;
        whsem_queue_new(&q);
        for (int i = 0; i < 100; i++) {
            whsem_op op;
            whsem_acquire_async(s, WHSEM_INFINITE, 0, ignore, NULL, &op);
            whsem_acquire_queued(s, WHSEM_INFINITE, 0, q, (uint64_t)i, &op);
        }
        exit(0); /* with 200 operations pending and the dispatcher running */
    }
    fprintf(stderr, "helper: unknown command or arguments: %s\n", cmd);
    return WHTEST_USAGE;
}
