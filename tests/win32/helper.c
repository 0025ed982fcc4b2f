/*
 * The other process of the Windows multi-process tests: where the Linux
 * suites fork() a child, the Windows suites (and the Linux-side kill -9
 * script) start this program with a command. Exit codes: 0 as expected,
 * anything else says what went wrong (see each command).
 *
 *   hold NAME MAX N          take N tickets, print "ready", sleep forever
 *   open NAME MAX            open the name, print "ready", sleep forever
 *   try NAME MAX             one try: 0 if nothing was free, 2 if a ticket was
 *   wait NAME MAX MS         wait up to MS for a ticket: 0 if one came
 *   query NAME               print "free=F waiters=W holders=H recoveries=R"
 *   worker NAME MAX LEDGER ITER ID     acquire/release ITER times, counting
 *                            who is inside in the shared ledger
 *   chaos NAME MAX LEDGER ID acquire/release until told to stop (tests kill it)
 *   asyncrace NAME MAX ITER SEED  asynchronous acquisitions racing endings
 *   exitpending NAME MAX     exit with 200 operations pending
 *   fault POINT NAME MAX HELD     (fault-injection build) die at POINT
 */
#include "ledger.h"
#include "whsem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what, whsem_status st, int code)
{
    fprintf(stderr, "helper: %s: %s: %s\n", what, whsem_status_name(st), whsem_last_error());
    return code;
}

static struct ledger *open_ledger(const char *name)
{
    HANDLE s = OpenFileMappingA(FILE_MAP_ALL_ACCESS, FALSE, name);
    return s ? MapViewOfFile(s, FILE_MAP_ALL_ACCESS, 0, 0, sizeof(struct ledger)) : NULL;
}

static void ready(void)
{
    printf("ready\n");
    fflush(stdout);
}

static int cmd_worker(whsem_sem s, struct ledger *l, int iter, int id)
{
    for (int i = 0; i < iter; i++) {
        whsem_ticket t;
        whsem_status st = whsem_acquire(s, (i + id) % 4 == 0 ? 0 : 30000, 0, &t);
        if (st == WHSEM_TIMEOUT) continue;
        if (st != WHSEM_OK) return fail("acquire", st, 2);
        ledger_raise_high(l, InterlockedIncrement(&l->inside));
        InterlockedIncrement64(&l->acquisitions);
        if (i % 8 == 0) Sleep(1);
        InterlockedDecrement(&l->inside);
        if ((st = whsem_release(t)) != WHSEM_OK) return fail("release", st, 3);
    }
    return 0;
}

/* A killed worker cannot clear its flag, so an entry counts only the flags
 * of workers that were not yet being killed when it entered (the Linux
 * chaos test's ledger). */
static int cmd_chaos(whsem_sem s, struct ledger *l, int me)
{
    for (;;) {
        whsem_ticket t;
        whsem_status st = whsem_acquire(s, 30000, 0, &t);
        if (st != WHSEM_OK) return fail("acquire", st, 2);
        l->holding[me] = 1;
        MemoryBarrier();
        LONG64 entered = ledger_now();
        LONG inside = 0;
        for (int j = 0; j < LEDGER_WORKERS; j++) {
            LONG64 k = l->killed_at[j];
            if (l->holding[j] && (k == 0 || k > entered)) inside++;
        }
        ledger_raise_high(l, inside);
        InterlockedIncrement64(&l->acquisitions);
        Sleep(1); /* killed here, most of the time */
        l->holding[me] = 0;
        MemoryBarrier();
        if ((st = whsem_release(t)) != WHSEM_OK) return fail("release", st, 3);
        if (l->stop) return 0;
    }
}

static int cmd_asyncrace(whsem_sem s, int iter, unsigned seed)
{
    srand(seed);
    for (int i = 0; i < iter; i++) {
        whsem_ticket held;
        whsem_status hs = whsem_acquire(s, 5000, 0, &held);
        whsem_op op;
        whsem_status st = whsem_acquire_async(s, (rand() % 2) ? 1 : WHSEM_INFINITE, 0, NULL, NULL, &op);
        if (st != WHSEM_OK) return fail("start", st, 2);
        if (hs == WHSEM_OK) whsem_release(held);
        if (rand() % 2) whsem_op_cancel(op);
        if (rand() % 3 == 0) {
            if ((st = whsem_op_free(op)) != WHSEM_OK) return fail("free pending", st, 3);
            continue;
        }
        st = whsem_op_wait(op, 30000);
        if (st == WHSEM_OK) {
            whsem_ticket t;
            if ((st = whsem_op_take_ticket(op, &t)) != WHSEM_OK) return fail("take", st, 4);
            if ((st = whsem_release(t)) != WHSEM_OK) return fail("release", st, 4);
        } else if (st != WHSEM_CANCELED && st != WHSEM_TIMEOUT) {
            return fail("wait", st, 5);
        }
        if ((st = whsem_op_free(op)) != WHSEM_OK) return fail("free", st, 6);
    }
    return 0;
}

static void WHSEM_CALL ignore(whsem_op op, whsem_status st, void *ud) { (void)op, (void)st, (void)ud; }

static int cmd_fault(const char *point, const char *name, int32_t max, int held)
{
    whsem_sem s;
    whsem_ticket t;
    if (strcmp(point, "attach") != 0) {
        if (whsem_open(name, max, NULL, &s) != WHSEM_OK) return 10;
        for (int i = 0; i < held; i++)
            if (whsem_acquire(s, 0, 0, &t) != WHSEM_OK) return 11;
    }
    SetEnvironmentVariableA("WHSEM_FAULT_POINT", point);
    if (whsem_open(name, max, NULL, &s) != WHSEM_OK) return 12;
    if (whsem_acquire(s, 0, 0, &t) != WHSEM_OK) return 13;
    if (strcmp(point, "release") == 0) whsem_release(t);
    return 50; /* the fault point did not fire */
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: see helper.c\n");
        return 64;
    }
    const char *cmd = argv[1], *name = argv[2];
    int32_t max = argc > 3 ? atoi(argv[3]) : 0;
    whsem_sem s = 0;
    whsem_status st;
    if (strcmp(cmd, "fault") == 0)
        return argc == 6 ? cmd_fault(argv[2], argv[3], atoi(argv[4]), atoi(argv[5])) : 64;
    st = max > 0 ? whsem_open(name, max, NULL, &s) : whsem_open_existing(name, NULL, &s);
    if (st != WHSEM_OK) return fail("open", st, 1);

    if (strcmp(cmd, "hold") == 0 && argc == 5) {
        for (int i = 0; i < atoi(argv[4]); i++) {
            whsem_ticket t;
            if ((st = whsem_acquire(s, 0, 0, &t)) != WHSEM_OK) return fail("hold", st, 2);
        }
        ready();
        Sleep(INFINITE);
    }
    if (strcmp(cmd, "open") == 0) {
        ready();
        Sleep(INFINITE);
    }
    if (strcmp(cmd, "try") == 0) {
        whsem_ticket t;
        st = whsem_acquire(s, 0, 0, &t);
        if (st == WHSEM_OK) whsem_release(t);
        return st == WHSEM_TIMEOUT ? 0 : st == WHSEM_OK ? 2 : fail("try", st, 1);
    }
    if (strcmp(cmd, "wait") == 0 && argc == 5) {
        whsem_ticket t;
        ULONGLONG start = GetTickCount64();
        st = whsem_acquire(s, atoi(argv[4]), 0, &t);
        if (st != WHSEM_OK) return fail("wait", st, 3);
        printf("acquired after %llu ms\n", (unsigned long long)(GetTickCount64() - start));
        fflush(stdout);
        return whsem_release(t) == WHSEM_OK ? 0 : 4;
    }
    if (strcmp(cmd, "query") == 0) {
        whsem_info info = {sizeof info, 0, 0, 0, 0, 0, 0};
        size_t n;
        if ((st = whsem_query(s, &info, NULL, 0, &n)) != WHSEM_OK) return fail("query", st, 2);
        printf("free=%d waiters=%u holders=%u recoveries=%llu\n", info.free_count, info.waiters,
               info.holders, (unsigned long long)info.recoveries);
        return 0;
    }
    if (strcmp(cmd, "worker") == 0 && argc == 7) {
        struct ledger *l = open_ledger(argv[4]);
        return l ? cmd_worker(s, l, atoi(argv[5]), atoi(argv[6])) : 20;
    }
    if (strcmp(cmd, "chaos") == 0 && argc == 6) {
        struct ledger *l = open_ledger(argv[4]);
        return l ? cmd_chaos(s, l, atoi(argv[5])) : 20;
    }
    if (strcmp(cmd, "asyncrace") == 0 && argc == 6) return cmd_asyncrace(s, atoi(argv[4]), (unsigned)atoi(argv[5]));
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
    return 64;
}
