// SPDX-License-Identifier: MIT
/*
 * What the files of the whsem command share: exit codes, the command table
 * entry, errors, text output and argument parsing. One file per concern:
 * main.c (dispatch, help), args.c, output.c, run.c (whsem run: signals,
 * fork/exec, the process group, liveness hand-over), admin.c (status,
 * list, rm, name).
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

extern const struct command cmd_run, cmd_status, cmd_list, cmd_rm, cmd_name;

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
    OPT_BACKEND
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

#endif
