// SPDX-License-Identifier: MIT
/*
 * whsem: the command-line front end of libwhsem.
 *
 *   whsem run NAME MAX [-t MS] [-E CODE] [-k DURATION | --no-kill] [--exact] -- CMD [ARGS...]
 *   whsem status NAME [--exact] [--json]
 *   whsem list [-l] [--json]
 *   whsem rm NAME [--exact] [--force]
 *   whsem prune [-n] [PATTERN...]
 *   whsem name NAME
 *   whsem top [-d DURATION] [-n COUNT] [-b]
 *   whsem stats NAME [--exact] [--json | --plot FILE.svg]
 *
 * This file dispatches to the commands (run.c, admin.c, top.c, plot.c) and
 * prints help.
 */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const char usage_main[] =
    "Usage: whsem COMMAND [ARGS...]\n"
    "       whsem --help | --version\n";

static const char help_main[] =
    "whsem: named, crash-safe, cross-process counting semaphores (libwhsem).\n"
    "\n"
    "Commands:\n"
    "  run NAME MAX [OPTIONS] -- CMD [ARGS...]  run CMD while holding one ticket\n"
    "  status NAME [--exact] [--json]           show a semaphore's state, who holds\n"
    "                                           and who waits, and its counters\n"
    "  list [-l] [--json]                       list the semaphores of this machine\n"
    "                                           (or of --backend's database)\n"
    "  rm NAME [--exact] [--force]              remove a semaphore's name\n"
    "  prune [-n] [PATTERN...]                  remove the names nobody has open\n"
    "  name NAME                                print the finalized form of NAME\n"
    "  top [-d DURATION] [-n COUNT] [-b]        watch every semaphore live: state,\n"
    "                                           rates, wait times, waiters\n"
    "  stats NAME [--json | --plot FILE.svg]    show a semaphore's counters and wait\n"
    "                                           times, or plot them\n"
    "  help [COMMAND]                           show help (also: COMMAND --help)\n"
    "\n"
    "Names are UTF-8 and finalized like C# DistributedLock's\n"
    "WaitHandleDistributedSemaphore: \"abc\" means \"Global\\abc\". With --exact the\n"
    "name is used as given and must already be a finalized name.\n"
    "\n"
    "Every command takes --backend=CONNINFO (default: $WHSEM_BACKEND): a\n"
    "PostgreSQL database, given as a libpq connection string or postgresql://\n"
    "URI, whose semaphores every machine that reaches it shares. Passwords come\n"
    "through libpq's own means (~/.pgpass, PGPASSWORD, the URI) and are never\n"
    "shown.\n"
    "\n"
    "Options:\n"
    "  -h, --help     show this help and exit\n"
    "  -V, --version  show the version and exit\n";


const struct command *current_cmd;

static const char *backend_option;
static bool backend_given;

void set_backend(const char *conninfo)
{
    backend_option = conninfo;
    backend_given = true;
}

const char *backend(void)
{
    const char *b = backend_given ? backend_option : getenv("WHSEM_BACKEND");
    return b && *b ? b : NULL;
}

void open_options(whsem_open_options *o, uint32_t flags)
{
    memset(o, 0, sizeof *o);
    o->struct_size = sizeof *o;
    o->flags = flags;
    o->backend = backend();
}

void show_help(const struct command *c)
{
    if (c) fputs(c->usage, stdout), fputc('\n', stdout), fputs(c->help, stdout);
    else fputs(usage_main, stdout), fputc('\n', stdout), fputs(help_main, stdout);
}

void usage_error(const char *fmt, ...)
{
    va_list ap;
    fputs("whsem: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fputs(current_cmd ? current_cmd->usage : usage_main, stderr);
    fprintf(stderr, "Try 'whsem %s%s--help' for more information.\n",
            current_cmd ? current_cmd->name : "", current_cmd ? " " : "");
    exit(EXIT_USAGE);
}

void lib_error(whsem_status st)
{
    fprintf(stderr, "whsem: %s: %s\n", whsem_status_name(st), whsem_last_error());
}

static int help_main_cmd(int argc, char **argv);

static const struct command cmd_help = {"help", "Usage: whsem help [COMMAND]\n",
                                         "Show help for whsem or for COMMAND.\n", help_main_cmd};

static const struct command *const commands[] = {&cmd_run,  &cmd_status, &cmd_list,  &cmd_rm,
                                                 &cmd_prune, &cmd_name, &cmd_top, &cmd_stats,
                                                 &cmd_help};

static const struct command *find_command(const char *name)
{
    for (size_t k = 0; k < sizeof commands / sizeof commands[0]; k++)
        if (strcmp(commands[k]->name, name) == 0) return commands[k];
    return NULL;
}

static int help_main_cmd(int argc, char **argv)
{
    if (argc > 2) usage_error("unexpected argument '%s'", argv[2]);
    if (argc == 2 && strcmp(argv[1], "--help") != 0 && strcmp(argv[1], "-h") != 0) {
        const struct command *c = find_command(argv[1]);
        if (!c) usage_error("unknown command '%s'", argv[1]);
        show_help(c);
        return 0;
    }
    show_help(argc == 2 ? current_cmd : NULL);
    return 0;
}

static void print_version(void)
{
    printf("whsem (libwhsem) %s\n", whsem_version_string());
}

int main(int argc, char **argv)
{
    if ((whsem_version() >> 16) != WHSEM_VERSION_MAJOR) {
        fprintf(stderr, "whsem: built for libwhsem %d.x but running with %s\n", WHSEM_VERSION_MAJOR,
                whsem_version_string());
        return EXIT_FAILED;
    }
    if (argc < 2) usage_error("missing command");
    const char *first = argv[1];
    if (strcmp(first, "--help") == 0 || strcmp(first, "-h") == 0) {
        if (argc > 2) usage_error("unexpected argument '%s'", argv[2]);
        show_help(NULL);
        return 0;
    }
    if (strcmp(first, "--version") == 0 || strcmp(first, "-V") == 0) {
        if (argc > 2) usage_error("unexpected argument '%s'", argv[2]);
        print_version();
        return 0;
    }
    if (first[0] == '-') usage_error("unknown option '%s'", first);
    const struct command *c = find_command(first);
    if (!c) usage_error("unknown command '%s'", first);
    current_cmd = c;
    int rc = c->main(argc - 1, argv + 1);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "whsem: cannot write the output: %s\n", strerror(errno));
        if (rc == 0) rc = 1;
    }
    return rc;
}
