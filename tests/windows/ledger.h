/* SPDX-License-Identifier: MIT */
/* Memory the Windows tests share with their helper processes (a named
 * section): who is inside, the most ever seen, and the chaos test's marks.
 * Plain C, updated with Interlocked operations by C and C++ alike. */
#ifndef WHSEM_WIN_LEDGER_H
#define WHSEM_WIN_LEDGER_H

#include <windows.h>

#define LEDGER_WORKERS 8

struct ledger {
    volatile LONG inside;
    volatile LONG high;
    volatile LONG ready;
    volatile LONG stop;
    volatile LONG64 acquisitions;
    volatile LONG holding[LEDGER_WORKERS];
    volatile LONG64 killed_at[LEDGER_WORKERS]; /* QueryPerformanceCounter, 0 = alive */
};

static inline LONG64 ledger_now(void)
{
    LARGE_INTEGER c;
    QueryPerformanceCounter(&c);
    return c.QuadPart;
}

static inline void ledger_raise_high(struct ledger *l, LONG now)
{
    LONG h = l->high;
    while (now > h) {
        LONG seen = InterlockedCompareExchange(&l->high, now, h);
        if (seen == h) break;
        h = seen;
    }
}

#endif
