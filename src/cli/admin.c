// SPDX-License-Identifier: MIT
/*
 * whsem status, list, rm and name: looking at and removing names.
 */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static const char usage_status[] = "Usage: whsem status NAME [--exact] [--json]\n";

static const char help_status[] =
    "Show the state of the existing semaphore NAME: max count, free tickets,\n"
    "waiting acquisitions, processes that have it open (this one included),\n"
    "recoveries (dead processes whose tickets were reclaimed), and one line per\n"
    "process holding tickets. Dead holders are reclaimed before the snapshot.\n"
    "HELD SINCE is when libwhsem first recorded the holding: uncontended\n"
    "acquisitions are stamped lazily (by the next waiter's scan or status), so\n"
    "it can be later than the real acquisition.\n"
    "\n"
    "On PostgreSQL (--backend) every process using NAME on any machine is\n"
    "listed with its host; WAITING counts another process's waiting\n"
    "connections (one per ticket index it waits on), this one's acquisitions.\n"
    "\n"
    "Options:\n"
    "      --exact  NAME is already finalized (\"Global\\...\")\n"
    "      --json   print one JSON object instead of text\n"
    BACKEND_HELP
    "  -h, --help   show this help and exit\n"
    "\n"
    "Exit status: 0 on success, 1 if NAME does not exist or on any failure,\n"
    "2 on a usage error.\n";

static const char usage_list[] = "Usage: whsem list\n";

static const char help_list[] =
    "Print the finalized name of every semaphore on this machine that you can\n"
    "see (or that --backend's database knows), one per line, sorted. Control\n"
    "characters are written as \\xHH (C1 controls and bidirectional overrides as\n"
    "\\uHHHH), so every line is one name.\n"
    "\n"
    "Options:\n"
    BACKEND_HELP
    "  -h, --help  show this help and exit\n"
    "\n"
    "Exit status: 0 on success, 1 on failure, 2 on a usage error.\n";

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

static void print_status_json(const char *name, const whsem_info *info, const whsem_holder *h,
                              size_t n)
{
    printf("{\"name\":");
    put_json_string(stdout, name);
    printf(",\"max\":%" PRId32 ",\"free\":%" PRId32 ",\"waiters\":%" PRIu32
           ",\"processes\":%" PRIu32 ",\"recoveries\":%" PRIu64 ",\"holders\":[",
           info->max_count, info->free_count, info->waiters, info->processes, info->recoveries);
    for (size_t k = 0; k < n; k++) {
        printf("%s{\"pid\":%" PRId64 ",\"tickets\":%" PRId32 ",\"since_unix_ms\":", k ? "," : "",
               h[k].pid, h[k].tickets);
        if (h[k].since_unix_ms) {
            char when[64];
            format_local_time(h[k].since_unix_ms, when, sizeof when);
            printf("%" PRId64 ",\"since\":\"%s\"", h[k].since_unix_ms, when);
        } else {
            printf("null,\"since\":null");
        }
        printf(",\"waiting\":%" PRIu32 "}", h[k].waiting);
    }
    printf("]}\n");
}

static void print_status_text(const char *name, const whsem_info *info, const whsem_holder *h,
                              size_t n)
{
    printf("name:        ");
    put_display(stdout, name);
    printf("\nmax:         %" PRId32 "\n", info->max_count);
    printf("free:        %" PRId32 "\n", info->free_count);
    printf("waiters:     %" PRIu32 "\n", info->waiters);
    printf("processes:   %" PRIu32 " (including this one)\n", info->processes);
    printf("recoveries:  %" PRIu64 "\n", info->recoveries);
    printf("holders:     %zu\n", n);
    if (n == 0) return;
    printf("%-10s %-8s %-42s %s\n", "PID", "TICKETS", "HELD SINCE", "WAITING");
    int64_t now = now_unix_ms();
    for (size_t k = 0; k < n; k++) {
        char since[128];
        format_since(h[k].since_unix_ms, now, since, sizeof since);
        printf("%-10" PRId64 " %-8" PRId32 " %-42s %" PRIu32 "\n", h[k].pid, h[k].tickets, since,
               h[k].waiting);
    }
}

/* On PostgreSQL: every process with its host, holders and waiters. */
static int status_pg(whsem_sem sem, const char *name, bool json)
{
    whsem_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    whsem_process *ps = NULL;
    size_t cap = 0, n = 0;
    whsem_status st;
    for (;;) {
        st = whsem_query_processes(sem, &info, ps, cap, &n);
        if (st != WHSEM_OK || n <= cap) break;
        free(ps);
        cap = n + 4; /* room for a few that arrive meanwhile */
        ps = calloc(cap, sizeof *ps);
        if (!ps) {
            fputs("whsem: out of memory\n", stderr);
            return 1;
        }
        ps[0].struct_size = sizeof *ps;
    }
    if (st != WHSEM_OK) {
        free(ps);
        lib_error(st);
        return 1;
    }
    if (json) {
        printf("{\"name\":");
        put_json_string(stdout, name);
        printf(",\"backend\":\"postgresql\",\"max\":%" PRId32 ",\"free\":%" PRId32
               ",\"waiters\":%" PRIu32 ",\"processes\":%" PRIu32 ",\"holders\":[",
               info.max_count, info.free_count, info.waiters, info.processes);
        bool first = true;
        for (size_t k = 0; k < n; k++) {
            if (!ps[k].tickets) continue;
            printf("%s{\"host\":", first ? "" : ",");
            put_json_string(stdout, ps[k].host);
            printf(",\"pid\":%" PRId64 ",\"tickets\":%" PRId32 ",\"since_unix_ms\":%" PRId64
                   ",\"waiting\":%" PRIu32 "}",
                   ps[k].pid, ps[k].tickets, ps[k].holding_since_unix_ms, ps[k].waiting);
            first = false;
        }
        printf("],\"waiting\":[");
        first = true;
        for (size_t k = 0; k < n; k++) {
            if (!ps[k].waiting) continue;
            printf("%s{\"host\":", first ? "" : ",");
            put_json_string(stdout, ps[k].host);
            printf(",\"pid\":%" PRId64 ",\"waiting\":%" PRIu32 ",\"since_unix_ms\":%" PRId64 "}",
                   ps[k].pid, ps[k].waiting, ps[k].waiting_since_unix_ms);
            first = false;
        }
        printf("]}\n");
        free(ps);
        return 0;
    }
    printf("name:        ");
    put_display(stdout, name);
    printf("\nbackend:     PostgreSQL\n");
    printf("max:         %" PRId32 "\n", info.max_count);
    printf("free:        %" PRId32 "\n", info.free_count);
    printf("waiters:     %" PRIu32 "\n", info.waiters);
    printf("processes:   %" PRIu32 " (including this one)\n", info.processes);
    printf("holders:     %" PRIu32 "\n", info.holders);
    if (n) printf("%-24s %-10s %-8s %-42s %s\n", "HOST", "PID", "TICKETS", "HELD SINCE", "WAITING");
    int64_t now = now_unix_ms();
    for (size_t k = 0; k < n; k++) {
        if (!ps[k].tickets && !ps[k].waiting) continue;
        char since[128];
        format_since(ps[k].holding_since_unix_ms, now, since, sizeof since);
        printf("%-24.24s %-10" PRId64 " %-8" PRId32 " %-42s %" PRIu32 "\n", ps[k].host, ps[k].pid,
               ps[k].tickets, since, ps[k].waiting);
    }
    free(ps);
    return 0;
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
    whsem_status st;
    if (backend()) {
        int rc = status_pg(sem, final, o.json);
        whsem_close(sem);
        return rc;
    }

    whsem_info info;
    whsem_holder *holders = NULL;
    size_t cap = 0, count = 0;
    for (;;) {
        memset(&info, 0, sizeof info);
        info.struct_size = sizeof info;
        st = whsem_query(sem, &info, holders, cap, &count);
        if (st != WHSEM_OK || count <= cap) break;
        /* More holders than room: grow (with slack, they come and go). */
        cap = count + 8;
        free(holders);
        holders = calloc(cap, sizeof *holders);
        if (!holders) {
            fprintf(stderr, "whsem: out of memory\n");
            whsem_close(sem);
            return 1;
        }
    }
    int rc = 0;
    if (st != WHSEM_OK) {
        lib_error(st);
        rc = 1;
    } else if (o.json) {
        print_status_json(final, &info, holders, count);
    } else {
        print_status_text(final, &info, holders, count);
    }
    free(holders);
    whsem_close(sem);
    return rc;
}

/* ---- whsem list ------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int list_main(int argc, char **argv)
{
    static const struct optdef defs[] = {
        {"help", 'h', false, OPT_HELP},
        BACKEND_OPTDEF,
        {NULL, 0, false, 0},
    };
    for (int i = 1; i < argc;) {
        const char *arg;
        int id = next_arg(argv, argc, &i, defs, &arg);
        if (id == OPT_HELP) {
            show_help(current_cmd);
            return 0;
        }
        if (id == OPT_BACKEND) set_backend(arg);
        if (id == 0) usage_error("unexpected argument '%s'", arg);
    }

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
            fprintf(stderr, "whsem: out of memory\n");
            return 1;
        }
    }
    if (st != WHSEM_OK) {
        lib_error(st);
        free(buf);
        return 1;
    }
    size_t n = 0;
    for (const char *p = buf; *p; p += strlen(p) + 1) n++;
    char **names = calloc(n ? n : 1, sizeof *names);
    if (!names) {
        fprintf(stderr, "whsem: out of memory\n");
        free(buf);
        return 1;
    }
    n = 0;
    for (char *p = buf; *p; p += strlen(p) + 1) names[n++] = p;
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t k = 0; k < n; k++) {
        put_display(stdout, names[k]);
        fputc('\n', stdout);
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
