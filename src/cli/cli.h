// SPDX-License-Identifier: MIT
/*
 * What the files of the whsem command share: exit codes, the command table
 * entry, errors, text output and argument parsing. One file per concern:
 * main.c (dispatch, help), args.c, output.c, run.c (whsem run: signals,
 * fork/exec, the process group, liveness hand-over), admin.c (status,
 * list, rm, name, prune), stats.c (snapshots of a name, percentiles,
 * durations and command lines, for every command that shows a name),
 * top.c (whsem top), plot.c (whsem stats, text and SVG), counters.c
 * (what top and whsem stats share: rates, the waiters history, sparklines).
 */
#ifndef WHSEM_CLI_H
#define WHSEM_CLI_H

#include "whsem.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define EXIT_USAGE 2
#define EXIT_TEMPFAIL 75 /* EX_TEMPFAIL (sysexits.h), by choice: flock -w exits 1, timeout(1) 124 */
#define EXIT_FAILED 125  /* whsem itself failed, as env(1) and timeout(1) */
#define EXIT_CANNOT_INVOKE 126
#define EXIT_ENOENT 127

struct command {
    const char *name;
    const char *usage;
    const char *help;
    int (*main)(int argc, char **argv);
};

extern const struct command cmd_run, cmd_status, cmd_list, cmd_rm, cmd_name, cmd_prune, cmd_top,
    cmd_stats;

/* ---- main.c ---- */
extern const struct command *current_cmd;
void show_help(const struct command *c);
/* Reports a usage error of the current command and exits with 2. */
void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void lib_error(whsem_status st);

/* ---- output.c ---- */
/* Writes s for a terminal: control characters and unsafe code points escaped. */
void put_display(FILE *f, const char *s);
void put_json_string(FILE *f, const char *s);
void format_local_time(int64_t unix_ms, char *buf, size_t size);
void format_ago(int64_t ms, char *buf, size_t size);
/* "<local time> (<how long ago>)" for a status table, "-" for 0. */
void format_since(int64_t since_unix_ms, int64_t now_ms, char *buf, size_t size);
int64_t now_unix_ms(void);

/* ---- args.c ---- */
/* Parses a whole string as a decimal integer in [min, max]: no blanks, no
 * '+', no trailing garbage. */
bool parse_int(const char *s, long min, long max, long *out);
/* Parses a duration into whole milliseconds in [0, max_ms]: a plain
 * number is milliseconds (as whsem 1.0 took them), or a decimal number
 * with a unit: ms, s, m or h ("500ms", "5s", "1.5s", "2m", "1h"). False,
 * with *why saying what is wrong, if s is not one. */
bool parse_duration_ms(const char *s, int64_t max_ms, int64_t *out, const char **why);
/* How every command's help and usage errors describe a duration. */
#define DURATION_FORMS "such as 500ms, 5s, 1.5s, 2m or 1h (a plain number is milliseconds)"

struct optdef {
    const char *long_name; /* without "--" */
    char short_name;       /* 0 if none */
    bool has_arg;
    int id;
};

enum {
    OPT_HELP = 1,
    OPT_TIMEOUT,
    OPT_EXIT_CODE,
    OPT_KILL_AFTER,
    OPT_NO_KILL,
    OPT_EXACT,
    OPT_JSON,
    OPT_FORCE,
    OPT_VERSION,
    OPT_BACKEND,
    OPT_LONG,
    OPT_MODE,
    OPT_DRY_RUN,
    OPT_DELAY,
    OPT_ITERATIONS,
    OPT_BATCH,
    OPT_PLOT
};

/* --backend CONNINFO, every command's: where semaphores live (main.c).
 * The option wins over $WHSEM_BACKEND; neither (or "") means this
 * machine. */
#define BACKEND_OPTDEF {"backend", 0, true, OPT_BACKEND}
#define BACKEND_HELP                                                                   \
    "      --backend=CONNINFO  a PostgreSQL database (libpq connection string or\n"     \
    "                          postgresql:// URI) instead of this machine; default\n"   \
    "                          $WHSEM_BACKEND\n"
void set_backend(const char *conninfo);
/* The chosen backend, or NULL for this machine. */
const char *backend(void);
/* Options for whsem_open with flags and the chosen backend. */
void open_options(whsem_open_options *o, uint32_t flags);

/*
 * One step of option parsing over argv[*i]. Returns:
 *   an option id (with *arg set for options taking a value),
 *   0 for a positional argument (*arg = it),
 *   -1 for "--" (the caller decides what follows it).
 * Options may come before or after positionals; unknown ones are usage
 * errors.
 */
int next_arg(char **argv, int argc, int *i, const struct optdef *defs, const char **arg);
/* Parses "[options] NAME" (options anywhere, "--" ends them) for the
 * commands that take exactly one name. Returns the name. */
const char *parse_name_command(int argc, char **argv, const struct optdef *defs,
                               void (*on_opt)(int id, void *ctx), void *ctx);
/* The same for commands with options that take a value: on_opt gets it. */
const char *parse_name_command_args(int argc, char **argv, const struct optdef *defs,
                                    void (*on_opt)(int id, const char *arg, void *ctx), void *ctx);

/* ---- stats.c ---- */
/* One look at a name: whsem_query_processes's answer and the wait-time
 * histogram. counters is false where the backend keeps no counters
 * (WHSEM_E_UNSUPPORTED): info's counter fields are then zeros, not
 * facts. */
struct snapshot {
    whsem_info info;
    whsem_process *procs; /* n of them, owned */
    size_t n;
    const char *self_host; /* this process's host as the backend reports it */
    bool counters;
    uint64_t buckets[WHSEM_WAIT_BUCKETS];
};
/* Takes a snapshot of sem (free it with free_snapshot, on WHSEM_OK only). */
whsem_status take_snapshot(whsem_sem sem, struct snapshot *s);
void free_snapshot(struct snapshot *s);
/* Whether p runs on this machine (its /proc is ours). */
bool is_this_host(const struct snapshot *s, const whsem_process *p);
/* Where bucket i of a WHSEM_WAIT_BUCKETS histogram begins and ends, in
 * ns; the last one has no end (INFINITY). */
void wait_bucket_bounds(size_t i, double *lo, double *hi);
/* The q-quantile (0 ... 1) of a WHSEM_WAIT_BUCKETS histogram in ns,
 * interpolated on a log scale inside its bucket (the last, open-ended
 * bucket gives its lower bound); -1 if it counts no waits. */
double wait_quantile_ns(const uint64_t *buckets, double q);
/* A duration for people: "850ns", "12.3us", "4.56ms", "1.5s", "2m03s",
 * "1h02m"; "-" for a negative one (unknown). */
void format_duration_ns(double ns, char *buf, size_t size);
/* /proc/PID/cmdline: the arguments, each NUL-terminated, len bytes in all
 * (malloc'd); NULL if unreadable or empty (gone, a zombie, a kernel
 * thread). */
char *read_cmdline(int64_t pid, size_t *len);
/* The arguments as one line for a terminal, quoted as a shell would need. */
void put_cmdline(FILE *f, const char *args, size_t len);
/* The arguments as a JSON array of strings; null for NULL. */
void put_cmdline_json(FILE *f, const char *args, size_t len);
/* Whether the arguments are those of a `whsem run`. */
bool is_whsem_run(const char *args, size_t len);
/* The command that the `whsem run` pid runs (the child leading a process
 * group of its own), or 0 if none runs (it waits, or the kernel lists no
 * children). */
int64_t run_command_pid(int64_t pid);

/* ---- admin.c ---- */
/* The finalized names of the chosen backend, sorted, into *names_out
 * (pointing into *buf_out; free both). On failure, why says why. */
whsem_status sorted_names(char **buf_out, char ***names_out, size_t *count, char *why,
                          size_t why_size);

/* ---- counters.c ---- */
/* A snapshot of a name (stats.c) and the recent seconds of its waiters
 * history (the most waiting in each second, oldest first). */
struct sem_stats {
    struct snapshot snap;
    bool has_history; /* false where the backend keeps none */
    uint32_t *history; /* owned */
    size_t seconds;
};
/* Takes them, with up to max_seconds of history (0: none); free them
 * with free_sem_stats, on WHSEM_OK only. */
whsem_status read_sem_stats(whsem_sem sem, size_t max_seconds, struct sem_stats *s);
void free_sem_stats(struct sem_stats *s);
/* Opens the existing semaphore NAME (finalized already with exact) and
 * writes its finalized name to final; says why not on stderr and returns
 * false if it cannot. */
bool open_named(const char *name, bool exact, whsem_sem *sem, char *final, size_t size);
/* Events per second, "-" for a negative one (unknown). */
void format_rate(double per_second, char *buf, size_t size);
/* Whether the locale (LC_CTYPE, once set) writes UTF-8. */
bool utf8_terminal(void);
/* n values as width columns of block characters (ASCII without UTF-8),
 * scaled to their peak; the most recent at the right. */
void put_sparkline(FILE *f, const uint32_t *values, size_t n, size_t width);

#endif
