/* SPDX-License-Identifier: MIT */
/*
 * The other process of the Windows multi-process tests: where the Linux
 * suites fork() a child, the Windows suites (and the Linux-side kill -9
 * script) start this program with a command. It runs the commands both
 * platforms share (tests/library/commands.h: hold, open, try, wait, query,
 * asyncrace, exitpending, and the fault commands in whsem_win_helper_fi.exe)
 * and these Windows-only ones:
 *
 *   worker NAME MAX LEDGER ITER ID     acquire/release ITER times, counting
 *                            who is inside in the shared ledger
 *   chaos NAME MAX LEDGER ID acquire/release until told to stop (tests kill it)
 *
 * Exit codes: 0 as expected, anything else says what went wrong.
 */
#include "commands.h"
#include "ledger.h"
#include "whsem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct ledger *open_ledger(const char *name)
{
    HANDLE s = OpenFileMappingA(FILE_MAP_ALL_ACCESS, FALSE, name);
    return s ? MapViewOfFile(s, FILE_MAP_ALL_ACCESS, 0, 0, sizeof(struct ledger)) : NULL;
}

static int cmd_worker(whsem_sem s, struct ledger *l, int iter, int id)
{
    for (int i = 0; i < iter; i++) {
        whsem_ticket t;
        whsem_status st = whsem_acquire(s, (i + id) % 4 == 0 ? 0 : 30000, 0, &t);
        if (st == WHSEM_TIMEOUT) continue;
        if (st != WHSEM_OK) return whtest_fail("acquire", st, 2);
        ledger_raise_high(l, InterlockedIncrement(&l->inside));
        InterlockedIncrement64(&l->acquisitions);
        if (i % 8 == 0) Sleep(1);
        InterlockedDecrement(&l->inside);
        if ((st = whsem_release(t)) != WHSEM_OK) return whtest_fail("release", st, 3);
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
        if (st != WHSEM_OK) return whtest_fail("acquire", st, 2);
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
        if ((st = whsem_release(t)) != WHSEM_OK) return whtest_fail("release", st, 3);
        if (l->stop) return 0;
    }
}

/* worker and chaos: the ledger is a named section only Windows has. */
static int ledger_command(char **argv)
{
    const char *cmd = argv[1], *name = argv[2];
    int32_t max = atoi(argv[3]);
    whsem_sem s = 0;
    whsem_status st = max > 0 ? whsem_open(name, max, NULL, &s) : whsem_open_existing(name, NULL, &s);
    if (st != WHSEM_OK) return whtest_fail("open", st, 1);
    struct ledger *l = open_ledger(argv[4]);
    if (!l) return 20;
    return strcmp(cmd, "worker") == 0 ? cmd_worker(s, l, atoi(argv[5]), atoi(argv[6]))
                                      : cmd_chaos(s, l, atoi(argv[5]));
}

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : "";
    if ((strcmp(cmd, "worker") == 0 && argc == 7) || (strcmp(cmd, "chaos") == 0 && argc == 6))
        return ledger_command(argv);
    return whtest_command(argc - 1, argv + 1);
}
