// SPDX-License-Identifier: MIT
/*
 * whsem status, list, rm and name: looking at and removing names.
 */
#include "cli.h"

#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static const char usage_status[] = "Usage: whsem status NAME [--exact] [--json]\n";

static const char help_status[] =
    "Show the state of the existing semaphore NAME: max count, free tickets,\n"
    "waiting acquisitions, processes that have it open (this one included),\n"
    "recoveries (dead processes whose tickets were reclaimed), then who holds\n"
    "tickets, who waits for one and who has it open doing neither, one line\n"
    "per process, then the name's counters. Dead holders are reclaimed before\n"
    "the snapshot.\n"
    "\n"
    "HELD SINCE is when libwhsem first recorded the holding: uncontended\n"
    "acquisitions are stamped lazily (by the next waiter's scan or status), so\n"
    "it can be later than the real acquisition. WAITING counts the process's\n"
    "acquisitions still waiting; WAITING SINCE, the start of its oldest one,\n"
    "is known on PostgreSQL only (\"-\" on this machine's backend).\n"
    "COMMAND is the process's command line, from /proc: \"?\" for a process of\n"
    "another host, or one whose command line cannot be read. A process in\n"
    "another pid namespace (a container sharing /dev/shm) is listed under its\n"
    "pid there: what /proc shows under that pid here is another process.\n"
    "The pid of a `whsem run` is whsem's own: the line below it, \"->\n"
    "command PID: ...\", shows the command it runs for that ticket.\n"
    "\n"
    "Counters (kept since the name was created, over every process):\n"
    "acquisitions (tickets handed out), timeouts, cancellations, waits\n"
    "(acquisitions that found no ticket free) with their mean, median (p50)\n"
    "and 99th percentile (p99) wait, releases with the mean hold time, and\n"
    "when the name was created. The percentiles come from a histogram with\n"
    "power-of-two buckets, interpolated inside a bucket. A backend that keeps\n"
    "no counters says \"counters: not kept by this backend\".\n"
    "\n"
    "On PostgreSQL (--backend) every process using NAME on any machine is\n"
    "listed with its host; WAITING counts another process's waiting\n"
    "connections (one per ticket index it waits on), this one's acquisitions.\n"
    "\n"
    "Options:\n"
    "      --exact  NAME is already finalized (\"Global\\...\")\n"
    "      --json   print one JSON object instead of text (keys: see whsem(1))\n"
    BACKEND_HELP
    "  -h, --help   show this help and exit\n"
    "\n"
    "Exit status: 0 on success, 1 if NAME does not exist or on any failure,\n"
    "2 on a usage error.\n";

static const char usage_list[] = "Usage: whsem list [-l] [--json]\n";

static const char help_list[] =
    "Print the finalized name of every semaphore on this machine that you can\n"
    "see (or that --backend's database knows), one per line, sorted. Control\n"
    "characters are written as \\xHH (C1 controls and bidirectional overrides as\n"
    "\\uHHHH), so every line is one name.\n"
    "\n"
    "With -l, each name is opened (never created) and shown with its MAX, FREE\n"
    "tickets, HOLDERS (processes holding tickets) and WAITERS (acquisitions\n"
    "waiting), the name last. A name removed meanwhile is left out; one that\n"
    "cannot be opened shows \"?\" and why.\n"
    "\n"
    "Options:\n"
    "  -l, --long  one line per name with its state\n"
    "      --json  the same as a JSON array, one object per name (keys: see\n"
    "              whsem(1))\n"
    BACKEND_HELP
    "  -h, --help  show this help and exit\n"
    "\n"
    "Exit status: 0 on success, 1 on failure, 2 on a usage error.\n";

static const char usage_prune[] = "Usage: whsem prune [-n] [PATTERN...]\n";

static const char help_prune[] =
    "Remove every name that no live process has open: the files under /dev/shm\n"
    "that past runs left (or the rows --backend's database keeps). A name in\n"
    "use is kept, exactly as `whsem rm` without --force keeps it. With\n"
    "PATTERNs (shell wildcards, quoted: 'nightly-*'), only the names that match\n"
    "one are looked at, with or without their \"Global\\\" prefix. Prints each\n"
    "name it removes: \"removed NAME\".\n"
    "\n"
    "Options:\n"
    "  -n, --dry-run  remove nothing; print \"would remove NAME\" for each name\n"
    "                 nobody has open now\n"
    BACKEND_HELP
    "  -h, --help     show this help and exit\n"
    "\n"
    "Exit status: 0 on success, also when nothing was removed; 1 if some name\n"
    "could not be looked at or removed (e.g. another user's: WHSEM_E_ACCESS_DENIED),\n"
    "or on any other failure; 2 on a usage error.\n";

static const char usage_rm[] = "Usage: whsem rm NAME [--exact] [--force]\n";

static const char help_rm[] =
    "Remove the name of the semaphore NAME, so that the next opener creates a\n"
    "fresh semaphore. A name that another live process has open is refused:\n"
    "processes that keep it open would not share tickets with new openers.\n"
    "\n"
    "Options:\n"
    "      --exact  NAME is already finalized (\"Global\\...\")\n"
    "  -f, --force  remove it even while other processes have it open\n"
    BACKEND_HELP
    "  -h, --help   show this help and exit\n"
    "\n"
    "Exit status: 0 on success, 1 on failure, 2 on a usage error.\n";

static const char usage_name[] = "Usage: whsem name NAME\n";

static const char help_name[] =
    "Print the finalized form of NAME (what every libwhsem and C#\n"
    "DistributedLock user means by it), e.g. `whsem name abc` prints\n"
    "Global\\abc. The result can be passed back with --exact. It is the same\n"
    "on every backend (--backend is accepted and changes nothing).\n"
    "\n"
    "Options:\n"
    BACKEND_HELP
    "  -h, --help  show this help and exit\n"
    "\n"
    "Exit status: 0 on success, 1 if NAME is not valid UTF-8, 2 on a usage error.\n";


/* ---- whsem status ---- */

struct status_opts {
    bool exact, json;
};

static void status_opt(int id, void *ctx)
{
    struct status_opts *o = ctx;
    if (id == OPT_EXACT) o->exact = true;
    if (id == OPT_JSON) o->json = true;
}

/* Who a process is: its command line, and for a `whsem run` the command
 * it runs. Only processes of this machine can be looked at. */
struct who {
    char *args, *cmd_args;
    size_t len, cmd_len;
    int64_t cmd_pid;
};

static void who_is(const struct snapshot *s, const whsem_process *p, struct who *w)
{
    memset(w, 0, sizeof *w);
    if (!is_this_host(s, p)) return;
    w->args = read_cmdline(p->pid, &w->len);
    if (!w->args || !is_whsem_run(w->args, w->len)) return;
    w->cmd_pid = run_command_pid(p->pid);
    if (w->cmd_pid) w->cmd_args = read_cmdline(w->cmd_pid, &w->cmd_len);
}

static void who_free(struct who *w)
{
    free(w->args);
    free(w->cmd_args);
}

static void put_json_since(const char *key, int64_t unix_ms)
{
    printf(",\"%s_unix_ms\":", key);
    if (!unix_ms) {
        printf("null,\"%s\":null", key);
        return;
    }
    char when[64];
    format_local_time(unix_ms, when, sizeof when);
    printf("%" PRId64 ",\"%s\":\"%s\"", unix_ms, key, when);
}

static void put_json_ns(const char *key, double ns)
{
    if (ns < 0) printf(",\"%s\":null", key);
    else printf(",\"%s\":%.0f", key, ns);
}

enum table { T_HOLDERS, T_WAITING, T_IDLE };

static bool in_table(const whsem_process *p, enum table t)
{
    switch (t) {
    case T_HOLDERS: return p->tickets > 0;
    case T_WAITING: return p->waiting > 0;
    case T_IDLE: return !p->tickets && !p->waiting && !p->is_self;
    }
    return false;
}

static void status_json_table(const struct snapshot *s, enum table t)
{
    bool first = true;
    putchar('[');
    for (size_t k = 0; k < s->n; k++) {
        const whsem_process *p = &s->procs[k];
        if (!in_table(p, t)) continue;
        printf("%s{\"host\":", first ? "" : ",");
        first = false;
        put_json_string(stdout, p->host);
        printf(",\"pid\":%" PRId64, p->pid);
        if (t == T_HOLDERS) {
            printf(",\"tickets\":%" PRId32, p->tickets);
            put_json_since("since", p->holding_since_unix_ms);
        }
        if (t != T_IDLE) printf(",\"waiting\":%" PRIu32, p->waiting);
        if (t == T_WAITING) put_json_since("since", p->waiting_since_unix_ms);
        struct who w;
        who_is(s, p, &w);
        printf(",\"cmdline\":");
        put_cmdline_json(stdout, w.args, w.len);
        printf(",\"command\":");
        if (w.cmd_pid) {
            printf("{\"pid\":%" PRId64 ",\"cmdline\":", w.cmd_pid);
            put_cmdline_json(stdout, w.cmd_args, w.cmd_len);
            putchar('}');
        } else {
            printf("null");
        }
        who_free(&w);
        putchar('}');
    }
    putchar(']');
}

static void print_status_json(const char *name, const struct snapshot *s)
{
    const whsem_info *i = &s->info;
    printf("{\"name\":");
    put_json_string(stdout, name);
    printf(",\"backend\":\"%s\",\"max\":%" PRId32 ",\"free\":%" PRId32 ",\"waiters\":%" PRIu32
           ",\"processes\":%" PRIu32 ",\"recoveries\":%" PRIu64 ",\"holders\":",
           backend() ? "postgresql" : "shared-memory", i->max_count, i->free_count, i->waiters,
           i->processes, i->recoveries);
    status_json_table(s, T_HOLDERS);
    printf(",\"waiting\":");
    status_json_table(s, T_WAITING);
    printf(",\"idle\":");
    status_json_table(s, T_IDLE);
    printf(",\"counters\":");
    if (!s->counters) {
        printf("null}\n");
        return;
    }
    printf("{\"acquisitions\":%" PRIu64 ",\"timeouts\":%" PRIu64 ",\"cancellations\":%" PRIu64
           ",\"waits\":%" PRIu64 ",\"wait_ns\":%" PRIu64,
           i->acquisitions, i->timeouts, i->cancellations, i->waits, i->wait_ns);
    put_json_ns("mean_wait_ns", i->waits ? (double)i->wait_ns / (double)i->waits : -1);
    put_json_ns("p50_wait_ns", wait_quantile_ns(s->buckets, 0.5));
    put_json_ns("p99_wait_ns", wait_quantile_ns(s->buckets, 0.99));
    printf(",\"releases\":%" PRIu64 ",\"hold_ns\":%" PRIu64, i->releases, i->hold_ns);
    put_json_ns("mean_hold_ns", i->releases ? (double)i->hold_ns / (double)i->releases : -1);
    put_json_since("created", i->created_unix_ms);
    printf(",\"wait_histogram\":[");
    for (size_t k = 0; k < WHSEM_WAIT_BUCKETS; k++)
        printf("%s%" PRIu64, k ? "," : "", s->buckets[k]);
    printf("]}}\n");
}

/* The rows of one table; the COMMAND column last, as it is the widest. */
static void status_text_table(const struct snapshot *s, enum table t, bool hosts)
{
    static const char *const heads[] = {
        [T_HOLDERS] = "%-8s %-42s %-8s ",
        [T_WAITING] = "%-8s %-42s ",
        [T_IDLE] = "",
    };
    if (hosts) printf("  %-24s %-10s ", "HOST", "PID");
    else printf("  %-10s ", "PID");
    if (t == T_HOLDERS) printf(heads[t], "TICKETS", "HELD SINCE", "WAITING");
    if (t == T_WAITING) printf(heads[t], "WAITING", "WAITING SINCE");
    printf("COMMAND\n");
    int64_t now = now_unix_ms();
    for (size_t k = 0; k < s->n; k++) {
        const whsem_process *p = &s->procs[k];
        if (!in_table(p, t)) continue;
        if (hosts) {
            fputs("  ", stdout);
            put_display(stdout, p->host);
            printf("%*s %-10" PRId64 " ", 24 - (int)strlen(p->host) > 0 ? 24 - (int)strlen(p->host) : 0,
                   "", p->pid);
        } else {
            printf("  %-10" PRId64 " ", p->pid);
        }
        char since[128], n[16];
        if (t == T_HOLDERS) {
            format_since(p->holding_since_unix_ms, now, since, sizeof since);
            snprintf(n, sizeof n, "%" PRId32, p->tickets);
            printf("%-8s %-42s %-8" PRIu32 " ", n, since, p->waiting);
        } else if (t == T_WAITING) {
            format_since(p->waiting_since_unix_ms, now, since, sizeof since);
            printf("%-8" PRIu32 " %-42s ", p->waiting, since);
        }
        struct who w;
        who_is(s, p, &w);
        if (w.args) put_cmdline(stdout, w.args, w.len);
        else putchar('?');
        putchar('\n');
        if (w.cmd_pid) {
            /* Under the wrapper's line: the command holding through it. */
            printf("  %*s-> command %" PRId64 ": ", hosts ? 36 : 11, "", w.cmd_pid);
            if (w.cmd_args) put_cmdline(stdout, w.cmd_args, w.cmd_len);
            else putchar('?');
            putchar('\n');
        }
        who_free(&w);
    }
}

static size_t count_in(const struct snapshot *s, enum table t)
{
    size_t c = 0;
    for (size_t k = 0; k < s->n; k++) c += in_table(&s->procs[k], t);
    return c;
}

static void print_status_text(const char *name, const struct snapshot *s)
{
    const whsem_info *i = &s->info;
    bool pg = backend() != NULL;
    printf("name:          ");
    put_display(stdout, name);
    if (pg) printf("\nbackend:       PostgreSQL");
    printf("\nmax:           %" PRId32 "\n", i->max_count);
    printf("free:          %" PRId32 "\n", i->free_count);
    printf("waiters:       %" PRIu32 "\n", i->waiters);
    printf("processes:     %" PRIu32 " (including this one)\n", i->processes);
    if (!pg) printf("recoveries:    %" PRIu64 "\n", i->recoveries);
    size_t n = count_in(s, T_HOLDERS);
    printf("holders:       %zu\n", n);
    if (n) status_text_table(s, T_HOLDERS, pg);
    n = count_in(s, T_WAITING);
    printf("waiting:       %zu %s\n", n, n == 1 ? "process" : "processes");
    if (n) status_text_table(s, T_WAITING, pg);
    n = count_in(s, T_IDLE);
    printf("idle:          %zu %s\n", n, n == 1 ? "process" : "processes");
    if (n) status_text_table(s, T_IDLE, pg);
    if (!s->counters) {
        printf("counters:      not kept by this backend\n");
        return;
    }
    char created[128], mean[32], p50[32], p99[32];
    format_since(i->created_unix_ms, now_unix_ms(), created, sizeof created);
    printf("created:       %s\n", created);
    printf("acquisitions:  %" PRIu64 "\n", i->acquisitions);
    printf("timeouts:      %" PRIu64 "\n", i->timeouts);
    printf("cancellations: %" PRIu64 "\n", i->cancellations);
    printf("waits:         %" PRIu64, i->waits);
    if (i->waits) {
        format_duration_ns((double)i->wait_ns / (double)i->waits, mean, sizeof mean);
        format_duration_ns(wait_quantile_ns(s->buckets, 0.5), p50, sizeof p50);
        format_duration_ns(wait_quantile_ns(s->buckets, 0.99), p99, sizeof p99);
        printf(" (mean %s, p50 %s, p99 %s)", mean, p50, p99);
    }
    printf("\nreleases:      %" PRIu64, i->releases);
    if (i->releases) {
        format_duration_ns((double)i->hold_ns / (double)i->releases, mean, sizeof mean);
        printf(" (mean hold %s)", mean);
    }
    putchar('\n');
}

static int status_main(int argc, char **argv)
{
    static const struct optdef defs[] = {
        {"help", 'h', false, OPT_HELP},
        {"exact", 0, false, OPT_EXACT},
        {"json", 0, false, OPT_JSON},
        BACKEND_OPTDEF,
        {NULL, 0, false, 0},
    };
    struct status_opts o = {false, false};
    const char *name = parse_name_command(argc, argv, defs, status_opt, &o);

    whsem_sem sem;
    char final[1024];
    if (!open_named(name, o.exact, &sem, final, sizeof final)) return 1;
    struct snapshot snap;
    whsem_status st = take_snapshot(sem, &snap);
    if (st != WHSEM_OK) lib_error(st); /* before the close, which may change the message */
    whsem_close(sem);
    if (st != WHSEM_OK) return 1;
    if (o.json) print_status_json(final, &snap);
    else print_status_text(final, &snap);
    free_snapshot(&snap);
    return 0;
}

/* ---- whsem list ------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

whsem_status sorted_names(char **buf_out, char ***names_out, size_t *count, char *why,
                          size_t why_size)
{
    char *buf = NULL;
    size_t size = 0, need = 0;
    whsem_status st;
    for (;;) {
        st = whsem_list_backend(backend(), buf, size, &need);
        /* Asking again is needed while semaphores appear between calls. */
        if (st != WHSEM_E_INVALID_ARGUMENT || need <= size) break;
        size = need + 256;
        free(buf);
        buf = malloc(size);
        if (!buf) {
            snprintf(why, why_size, "out of memory");
            return WHSEM_E_NO_MEMORY;
        }
    }
    if (st != WHSEM_OK) {
        snprintf(why, why_size, "%s", whsem_last_error());
        free(buf);
        return st;
    }
    size_t n = 0;
    for (const char *p = buf; *p; p += strlen(p) + 1) n++;
    char **names = calloc(n ? n : 1, sizeof *names);
    if (!names) {
        snprintf(why, why_size, "out of memory");
        free(buf);
        return WHSEM_E_NO_MEMORY;
    }
    n = 0;
    for (char *p = buf; *p; p += strlen(p) + 1) names[n++] = p;
    qsort(names, n, sizeof *names, cmp_str);
    *buf_out = buf;
    *names_out = names;
    *count = n;
    return WHSEM_OK;
}

/* sorted_names, saying why not on stderr. */
static bool list_names(char **buf_out, char ***names_out, size_t *count)
{
    char why[512];
    whsem_status st = sorted_names(buf_out, names_out, count, why, sizeof why);
    if (st != WHSEM_OK) fprintf(stderr, "whsem: %s: %s\n", whsem_status_name(st), why);
    return st == WHSEM_OK;
}

/* Opens a listed (finalized) name without creating it. */
static whsem_status open_listed(const char *name, whsem_sem *sem)
{
    whsem_open_options opts;
    open_options(&opts, WHSEM_OPEN_EXACT_NAME);
    return whsem_open_existing(name, &opts, sem);
}

/* One row of `list -l`: a name vanished meanwhile is skipped, one that
 * cannot be looked at says why. */
static void list_long_row(const char *name, bool json, bool *first)
{
    whsem_sem sem;
    whsem_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    size_t holders;
    char why[512] = "";
    whsem_status st = open_listed(name, &sem);
    if (st == WHSEM_OK) {
        st = whsem_query(sem, &info, NULL, 0, &holders);
        /* The message of a failed query, before the close. */
        if (st != WHSEM_OK) snprintf(why, sizeof why, "%s", whsem_last_error());
        whsem_close(sem);
    } else {
        snprintf(why, sizeof why, "%s", whsem_last_error());
    }
    if (st == WHSEM_E_NOT_FOUND) return;
    if (json) {
        printf("%s\n{\"name\":", *first ? "" : ",");
        put_json_string(stdout, name);
        if (st == WHSEM_OK)
            printf(",\"max\":%" PRId32 ",\"free\":%" PRId32 ",\"holders\":%" PRIu32
                   ",\"waiters\":%" PRIu32 ",\"error\":null}",
                   info.max_count, info.free_count, info.holders, info.waiters);
        else {
            printf(",\"max\":null,\"free\":null,\"holders\":null,\"waiters\":null,"
                   "\"error\":{\"status\":\"%s\",\"message\":",
                   whsem_status_name(st));
            put_json_string(stdout, why);
            printf("}}");
        }
    } else if (st == WHSEM_OK) {
        printf("%10" PRId32 " %10" PRId32 " %8" PRIu32 " %8" PRIu32 "  ", info.max_count,
               info.free_count, info.holders, info.waiters);
        put_display(stdout, name);
        putchar('\n');
    } else {
        printf("%10s %10s %8s %8s  ", "?", "?", "?", "?");
        put_display(stdout, name);
        printf("  (%s: ", whsem_status_name(st));
        put_display(stdout, why);
        printf(")\n");
    }
    *first = false;
}

static int list_main(int argc, char **argv)
{
    static const struct optdef defs[] = {
        {"help", 'h', false, OPT_HELP},
        {"long", 'l', false, OPT_LONG},
        {"json", 0, false, OPT_JSON},
        BACKEND_OPTDEF,
        {NULL, 0, false, 0},
    };
    bool long_form = false, json = false;
    for (int i = 1; i < argc;) {
        const char *arg;
        int id = next_arg(argv, argc, &i, defs, &arg);
        if (id == OPT_HELP) {
            show_help(current_cmd);
            return 0;
        }
        if (id == OPT_BACKEND) set_backend(arg);
        if (id == OPT_LONG) long_form = true;
        if (id == OPT_JSON) json = true;
        if (id == 0) usage_error("unexpected argument '%s'", arg);
        if (id == -1 && i < argc) usage_error("unexpected argument '%s'", argv[i]);
    }

    char *buf, **names;
    size_t n;
    if (!list_names(&buf, &names, &n)) return 1;
    if (json || long_form) {
        bool first = true;
        if (json) putchar('[');
        else printf("%10s %10s %8s %8s  %s\n", "MAX", "FREE", "HOLDERS", "WAITERS", "NAME");
        for (size_t k = 0; k < n; k++) list_long_row(names[k], json, &first);
        if (json) printf("%s]\n", first ? "" : "\n");
    } else {
        for (size_t k = 0; k < n; k++) {
            put_display(stdout, names[k]);
            fputc('\n', stdout);
        }
    }
    free(names);
    free(buf);
    return 0;
}

/* ---- whsem rm ---------------------------------------------------------------- */

struct rm_opts {
    bool exact, force;
};

static void rm_opt(int id, void *ctx)
{
    struct rm_opts *o = ctx;
    if (id == OPT_EXACT) o->exact = true;
    if (id == OPT_FORCE) o->force = true;
}

static int rm_main(int argc, char **argv)
{
    static const struct optdef defs[] = {
        {"help", 'h', false, OPT_HELP},
        {"exact", 0, false, OPT_EXACT},
        {"force", 'f', false, OPT_FORCE},
        BACKEND_OPTDEF,
        {NULL, 0, false, 0},
    };
    struct rm_opts o = {false, false};
    const char *name = parse_name_command(argc, argv, defs, rm_opt, &o);
    uint32_t flags = (o.exact ? WHSEM_OPEN_EXACT_NAME : 0) | (o.force ? WHSEM_UNLINK_FORCE : 0);
    whsem_status st = whsem_unlink_backend(backend(), name, flags);
    if (st == WHSEM_OK) return 0;

    char final[1024];
    size_t len;
    const char *shown = name;
    if (!o.exact && whsem_safe_name(name, final, sizeof final, &len) == WHSEM_OK) shown = final;
    if (st == WHSEM_E_BUSY) {
        fputs("whsem: '", stderr);
        put_display(stderr, shown);
        fputs("' is open in another live process; removing it now would leave that\n"
              "process on a semaphore new openers no longer share. Stop it first, or use\n"
              "--force to remove the name anyway.\n",
              stderr);
    } else if (st == WHSEM_E_NOT_FOUND) {
        fputs("whsem: no semaphore named '", stderr);
        put_display(stderr, shown);
        fputs("'\n", stderr);
    } else {
        lib_error(st);
    }
    return 1;
}

/* ---- whsem prune ------------------------------------------------------------ */

/* Whether a finalized name is one of the patterns (none: every name). A
 * pattern may leave out the "Global\" that every name of the default
 * scope starts with, as every other command lets a name do. */
static bool selected(const char *name, char **patterns, size_t n)
{
    if (!n) return true;
    const char *bare = strncmp(name, "Global\\", 7) == 0 ? name + 7 : NULL;
    for (size_t k = 0; k < n; k++)
        if (fnmatch(patterns[k], name, FNM_NOESCAPE) == 0 ||
            (bare && fnmatch(patterns[k], bare, FNM_NOESCAPE) == 0))
            return true;
    return false;
}

/* --dry-run: whether removing name would be refused as in use, answered
 * as whsem_unlink would answer it (another live process has it open).
 * why: the message of a failure. */
static whsem_status in_use(const char *name, bool *busy, char *why, size_t size)
{
    whsem_sem sem;
    whsem_status st = open_listed(name, &sem);
    if (st != WHSEM_OK) {
        snprintf(why, size, "%s", whsem_last_error());
        return st;
    }
    struct snapshot snap;
    st = take_snapshot(sem, &snap);
    if (st != WHSEM_OK) snprintf(why, size, "%s", whsem_last_error());
    whsem_close(sem);
    if (st != WHSEM_OK) return st;
    *busy = false;
    for (size_t k = 0; k < snap.n; k++)
        if (!snap.procs[k].is_self) *busy = true;
    free_snapshot(&snap);
    return WHSEM_OK;
}

static int prune_main(int argc, char **argv)
{
    static const struct optdef defs[] = {
        {"help", 'h', false, OPT_HELP},
        {"dry-run", 'n', false, OPT_DRY_RUN},
        BACKEND_OPTDEF,
        {NULL, 0, false, 0},
    };
    bool dry_run = false, only_positionals = false;
    char **patterns = calloc((size_t)argc, sizeof *patterns);
    size_t npat = 0;
    if (!patterns) {
        fprintf(stderr, "whsem: out of memory\n");
        return 1;
    }
    for (int i = 1; i < argc;) {
        const char *arg;
        int id = only_positionals ? (arg = argv[i++], 0) : next_arg(argv, argc, &i, defs, &arg);
        if (id == OPT_HELP) {
            show_help(current_cmd);
            free(patterns);
            return 0;
        }
        if (id == -1) only_positionals = true;
        if (id == OPT_BACKEND) set_backend(arg);
        if (id == OPT_DRY_RUN) dry_run = true;
        if (id == 0) patterns[npat++] = (char *)arg;
    }

    char *buf, **names;
    size_t n;
    if (!list_names(&buf, &names, &n)) {
        free(patterns);
        return 1;
    }
    int rc = 0;
    for (size_t k = 0; k < n; k++) {
        if (!selected(names[k], patterns, npat)) continue;
        bool busy = false;
        char why[512] = "";
        whsem_status st = dry_run ? in_use(names[k], &busy, why, sizeof why)
                                  : whsem_unlink_backend(backend(), names[k], WHSEM_OPEN_EXACT_NAME);
        if (!dry_run) snprintf(why, sizeof why, "%s", whsem_last_error());
        /* In use, or removed by someone else meanwhile: nothing to prune. */
        if (st == WHSEM_E_BUSY || st == WHSEM_E_NOT_FOUND || busy) continue;
        if (st != WHSEM_OK) {
            fputs(dry_run ? "whsem: cannot look at '" : "whsem: cannot remove '", stderr);
            put_display(stderr, names[k]);
            fprintf(stderr, "': %s: ", whsem_status_name(st));
            put_display(stderr, why);
            fputc('\n', stderr);
            rc = 1;
            continue;
        }
        fputs(dry_run ? "would remove " : "removed ", stdout);
        put_display(stdout, names[k]);
        fputc('\n', stdout);
    }
    free(names);
    free(buf);
    free(patterns);
    return rc;
}

/* ---- whsem name ----------------------------------------------------------- */

static void no_opt(int id, void *ctx)
{
    (void)id;
    (void)ctx;
}

static int name_main(int argc, char **argv)
{
    static const struct optdef defs[] = {
        {"help", 'h', false, OPT_HELP},
        BACKEND_OPTDEF,
        {NULL, 0, false, 0},
    };
    const char *name = parse_name_command(argc, argv, defs, no_opt, NULL);
    size_t need = 0;
    whsem_status st = whsem_safe_name(name, NULL, 0, &need);
    if (st == WHSEM_E_INVALID_NAME) {
        lib_error(st);
        return 1;
    }
    char *buf = need ? malloc(need) : NULL;
    if (!buf) {
        fprintf(stderr, "whsem: out of memory\n");
        return 1;
    }
    st = whsem_safe_name(name, buf, need, &need);
    if (st != WHSEM_OK) {
        lib_error(st);
        free(buf);
        return 1;
    }
    /* Printed raw: it is the caller's own name, meant for "$(whsem name X)". */
    puts(buf);
    free(buf);
    return 0;
}

const struct command cmd_status = {"status", usage_status, help_status, status_main};
const struct command cmd_list = {"list", usage_list, help_list, list_main};
const struct command cmd_rm = {"rm", usage_rm, help_rm, rm_main};
const struct command cmd_name = {"name", usage_name, help_name, name_main};
const struct command cmd_prune = {"prune", usage_prune, help_prune, prune_main};
