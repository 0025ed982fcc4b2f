// SPDX-License-Identifier: MIT
/*
 * What whsem top and whsem stats share: a name's snapshot with its waiters
 * history, opening a name by what the user typed, rates for people, and
 * the text sparkline.
 */
#include "cli.h"

#include <langinfo.h>
#include <stdlib.h>
#include <string.h>

whsem_status read_sem_stats(whsem_sem sem, size_t max_seconds, struct sem_stats *s)
{
    memset(s, 0, sizeof *s);
    whsem_status st = take_snapshot(sem, &s->snap);
    if (st != WHSEM_OK || !max_seconds) return st;
    size_t n;
    st = whsem_waiters_history(sem, NULL, 0, &n);
    /* Not kept, or (a database role that may not create the counters'
     * table) not to be had: has_history says so. */
    if (st == WHSEM_E_UNSUPPORTED || st == WHSEM_E_ACCESS_DENIED) return WHSEM_OK;
    if (st == WHSEM_OK && n > max_seconds) n = max_seconds;
    if (st == WHSEM_OK && n && !(s->history = calloc(n, sizeof *s->history)))
        st = WHSEM_E_NO_MEMORY;
    if (st == WHSEM_OK && n) st = whsem_waiters_history(sem, s->history, n, &s->seconds);
    if (st != WHSEM_OK) {
        free_sem_stats(s);
        return st;
    }
    /* The backend may keep more seconds than were asked for. */
    if (s->seconds > n) s->seconds = n;
    s->has_history = true;
    return WHSEM_OK;
}

void free_sem_stats(struct sem_stats *s)
{
    free_snapshot(&s->snap);
    free(s->history);
    s->history = NULL;
    s->seconds = 0;
    s->has_history = false;
}

bool open_named(const char *name, bool exact, whsem_sem *sem, char *final, size_t size)
{
    whsem_open_options opts;
    open_options(&opts, exact ? WHSEM_OPEN_EXACT_NAME : 0);
    whsem_status st = whsem_open_existing(name, &opts, sem);
    size_t len;
    if (st == WHSEM_E_NOT_FOUND) {
        fputs("whsem: no semaphore named '", stderr);
        if (exact || whsem_safe_name(name, final, size, &len) != WHSEM_OK)
            put_display(stderr, name);
        else put_display(stderr, final);
        fputs("'\n", stderr);
        return false;
    }
    if (st != WHSEM_OK) {
        lib_error(st);
        return false;
    }
    if (whsem_name(*sem, final, size, &len) != WHSEM_OK) snprintf(final, size, "%s", name);
    return true;
}

void format_rate(double per_second, char *buf, size_t size)
{
    if (per_second < 0) snprintf(buf, size, "-");
    else if (per_second < 9999.95) snprintf(buf, size, "%.1f", per_second);
    else if (per_second < 999999.5) snprintf(buf, size, "%.0f", per_second);
    else snprintf(buf, size, "%.1fM", per_second / 1e6);
}

bool utf8_terminal(void)
{
    static int known = -1;
    if (known < 0) {
        const char *cs = nl_langinfo(CODESET);
        known = cs && strcmp(cs, "UTF-8") == 0;
    }
    return known;
}

void put_sparkline(FILE *f, const uint32_t *values, size_t n, size_t width)
{
    static const char *const blocks[] = {"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
    static const char ascii[] = "_.-:=+*#";
    if (!width) return;
    uint32_t peak = 0;
    for (size_t k = 0; k < n; k++)
        if (values[k] > peak) peak = values[k];
    /* Each column shows the most of the seconds it stands for, so that a
     * short burst still shows when a minute is squeezed into a few columns;
     * seconds missing before the first one kept show as blanks. */
    for (size_t c = 0; c < width; c++) {
        size_t from = n * c / width, to = n * (c + 1) / width;
        if (n < width) {
            size_t first = width - n;
            if (c < first) {
                fputc(' ', f);
                continue;
            }
            from = c - first;
            to = from + 1;
        }
        uint32_t v = 0;
        for (size_t k = from; k < to; k++)
            if (values[k] > v) v = values[k];
        if (!v) {
            fputc(' ', f);
            continue;
        }
        /* Any waiter at all shows as at least the lowest block. */
        size_t level = (size_t)(((uint64_t)v * 8 + peak - 1) / peak) - 1;
        if (level > 7) level = 7;
        if (utf8_terminal()) fputs(blocks[level], f);
        else fputc(ascii[level], f);
    }
}
