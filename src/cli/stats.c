// SPDX-License-Identifier: MIT
/*
 * What the commands that look at a name share (status, list -l, top): one
 * snapshot of a name (its processes and counters), percentiles of the
 * wait-time histogram, durations for people, and who a process is (its
 * command line, and the command a `whsem run` runs).
 */
#include "cli.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

whsem_status take_snapshot(whsem_sem sem, struct snapshot *s)
{
    memset(s, 0, sizeof *s);
    size_t cap = 0;
    whsem_status st;
    for (;;) {
        memset(&s->info, 0, sizeof s->info);
        s->info.struct_size = sizeof s->info;
        st = whsem_query_processes(sem, &s->info, s->procs, cap, &s->n);
        if (st != WHSEM_OK || s->n <= cap) break;
        /* More processes than room: grow, with slack for those arriving. */
        cap = s->n + 8;
        free(s->procs);
        s->procs = calloc(cap, sizeof *s->procs);
        if (!s->procs) {
            free_snapshot(s);
            return WHSEM_E_NO_MEMORY;
        }
        s->procs[0].struct_size = sizeof *s->procs;
    }
    if (st != WHSEM_OK) {
        free_snapshot(s);
        return st;
    }
    s->self_host = "";
    for (size_t k = 0; k < s->n; k++)
        if (s->procs[k].is_self) s->self_host = s->procs[k].host;
    size_t nb = 0;
    st = whsem_wait_histogram(sem, s->buckets, WHSEM_WAIT_BUCKETS, &nb);
    /* A backend without counters answers zeros in info: say "not kept"
     * rather than show them as if nothing had happened. */
    /* (A database role that may not create the counters' table gets
     * WHSEM_E_ACCESS_DENIED: not kept for it either.) */
    if (st == WHSEM_E_UNSUPPORTED || st == WHSEM_E_ACCESS_DENIED) return WHSEM_OK;
    if (st != WHSEM_OK) {
        free_snapshot(s);
        return st;
    }
    s->counters = true;
    return WHSEM_OK;
}

void free_snapshot(struct snapshot *s)
{
    free(s->procs);
    s->procs = NULL;
    s->n = 0;
}

bool is_this_host(const struct snapshot *s, const whsem_process *p)
{
    return strcmp(p->host, s->self_host) == 0;
}

void wait_bucket_bounds(size_t i, double *lo, double *hi)
{
    *lo = i == 0 ? 0 : ldexp(1, (int)i + 9);
    *hi = i + 1 >= WHSEM_WAIT_BUCKETS ? INFINITY : ldexp(1, (int)i + 10);
}

double wait_quantile_ns(const uint64_t *buckets, double q)
{
    uint64_t total = 0;
    for (size_t i = 0; i < WHSEM_WAIT_BUCKETS; i++) total += buckets[i];
    if (!total) return -1;
    double rank = q * (double)total, before = 0;
    for (size_t i = 0; i < WHSEM_WAIT_BUCKETS; i++) {
        if (!buckets[i]) continue;
        double here = (double)buckets[i];
        if (before + here < rank && i + 1 < WHSEM_WAIT_BUCKETS) {
            before += here;
            continue;
        }
        double lo, hi, frac = (rank - before) / here;
        if (frac < 0) frac = 0;
        if (frac > 1) frac = 1;
        wait_bucket_bounds(i, &lo, &hi);
        /* The open-ended last bucket says only "at least". */
        if (isinf(hi)) return lo;
        /* Waits spread evenly over log time inside a bucket, as the
         * buckets themselves do; the first one (from 0) linearly. */
        return lo == 0 ? hi * frac : lo * pow(hi / lo, frac);
    }
    return -1; /* not reached: rank <= total */
}

/* v in unit with three significant digits, never in exponent form. */
static void three_digits(double v, const char *unit, char *buf, size_t size)
{
    snprintf(buf, size, v >= 99.95 ? "%.0f%s" : v >= 9.995 ? "%.1f%s" : "%.2f%s", v, unit);
}

void format_duration_ns(double ns, char *buf, size_t size)
{
    if (ns < 0 || isnan(ns)) snprintf(buf, size, "-");
    else if (ns < 999.5) snprintf(buf, size, "%.0fns", ns);
    else if (ns < 999.5e3) three_digits(ns / 1e3, "us", buf, size);
    else if (ns < 999.5e6) three_digits(ns / 1e6, "ms", buf, size);
    else if (ns < 59.95e9) three_digits(ns / 1e9, "s", buf, size);
    else if (ns < 3599.5e9) {
        uint64_t s = (uint64_t)(ns / 1e9 + 0.5);
        snprintf(buf, size, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
    } else {
        uint64_t m = (uint64_t)(ns / 60e9 + 0.5);
        snprintf(buf, size, "%" PRIu64 "h%02" PRIu64 "m", m / 60, m % 60);
    }
}

/* ---- who a process is ---- */

char *read_cmdline(int64_t pid, size_t *len)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%" PRId64 "/cmdline", pid);
    FILE *f = fopen(path, "re");
    if (!f) return NULL;
    size_t cap = 256, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) break;
        char *more = realloc(buf, 2 * cap + 1);
        if (!more) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = more;
        cap *= 2;
    }
    bool failed = ferror(f);
    fclose(f);
    /* Empty: a zombie, or a kernel thread; nothing to show either way. */
    if (!buf || failed || n == 0) {
        free(buf);
        return NULL;
    }
    /* A process may rewrite its arguments without the final NUL. */
    if (buf[n - 1] != '\0') buf[n++] = '\0';
    *len = n;
    return buf;
}

/* Whether an argument needs quotes to read back as one word. */
static bool needs_quotes(const char *a)
{
    if (!*a) return true;
    for (const char *p = a; *p; p++)
        if (strchr(" \t\n'\"\\$`*?[]#~;&|<>(){}!", *p)) return true;
    return false;
}

void put_cmdline(FILE *f, const char *args, size_t len)
{
    for (const char *a = args; a < args + len; a += strlen(a) + 1) {
        if (a != args) fputc(' ', f);
        if (!needs_quotes(a)) {
            put_display(f, a);
            continue;
        }
        /* Shell quoting, so that arguments with blanks stay apart. */
        fputc('\'', f);
        for (const char *p = a; *p;) {
            const char *q = strchr(p, '\'');
            size_t n = q ? (size_t)(q - p) : strlen(p);
            char *part = strndup(p, n);
            if (part) put_display(f, part);
            free(part);
            if (!q) break;
            fputs("'\\''", f);
            p = q + 1;
        }
        fputc('\'', f);
    }
}

void put_cmdline_json(FILE *f, const char *args, size_t len)
{
    if (!args) {
        fputs("null", f);
        return;
    }
    fputc('[', f);
    for (const char *a = args; a < args + len; a += strlen(a) + 1) {
        if (a != args) fputc(',', f);
        put_json_string(f, a);
    }
    fputc(']', f);
}

/* The process group and session of pid; false if it is gone. */
static bool group_of(int64_t pid, long long *pgrp, long long *session)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%" PRId64 "/stat", pid);
    FILE *f = fopen(path, "re");
    if (!f) return false;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    /* "pid (comm) state ppid pgrp ...": comm may hold anything but ends
     * at the last ')'. */
    char *end = strrchr(buf, ')');
    long long ppid;
    char state;
    return end && sscanf(end + 1, " %c %lld %lld %lld", &state, &ppid, pgrp, session) == 4;
}

bool is_whsem_run(const char *args, size_t len)
{
    const char *base = strrchr(args, '/');
    base = base ? base + 1 : args;
    size_t first = strlen(args) + 1;
    return strcmp(base, "whsem") == 0 && first < len && strcmp(args + first, "run") == 0;
}

int64_t run_command_pid(int64_t pid)
{
    /* whsem run forks the command from its main thread and makes it the
     * leader of a process group of its own in whsem's session (run.c).
     * Orphans that whsem reaps are its children too, but in the command's
     * group, or leading a session of their own (daemons). */
    long long pgrp, session;
    if (!group_of(pid, &pgrp, &session)) return 0;
    long long own_session = session;
    char path[96];
    snprintf(path, sizeof path, "/proc/%" PRId64 "/task/%" PRId64 "/children", pid, pid);
    FILE *f = fopen(path, "re");
    if (!f) return 0;
    long long child, found = 0;
    while (!found && fscanf(f, "%lld", &child) == 1)
        if (group_of(child, &pgrp, &session) && pgrp == child && session == own_session)
            found = child;
    fclose(f);
    return found;
}
