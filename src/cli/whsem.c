// SPDX-License-Identifier: MIT
/*
 * whsem — command-line front end of libwhsem.
 *
 *   whsem run NAME MAX [-t MS] [-E CODE] [-k DURATION | --no-kill] [--exact] -- CMD [ARGS...]
 *   whsem status NAME [--exact] [--json]
 *   whsem list
 *   whsem rm NAME [--exact] [--force]
 *   whsem name NAME
 *
 * The interesting part is `run`: the command, and whatever it starts, must
 * never keep running without the ticket it was started under, and signals
 * and the terminal must behave as the user of flock(1), timeout(1) or a
 * shell expects. See run_main() and run_command().
 */
#include "whsem.h"
#include "private.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define EXIT_USAGE 2
#define EXIT_TEMPFAIL 75 /* EX_TEMPFAIL (sysexits.h), by choice: flock -w exits 1, timeout(1) 124 */
#define EXIT_FAILED 125  /* whsem itself failed, as env(1) and timeout(1) */
#define EXIT_CANNOT_INVOKE 126
#define EXIT_ENOENT 127

/* ---- Usage and help ---------------------------------------------------- */

static const char usage_main[] =
    "Usage: whsem COMMAND [ARGS...]\n"
    "       whsem --help | --version\n";

static const char help_main[] =
    "whsem: named, crash-safe, cross-process counting semaphores (libwhsem).\n"
    "\n"
    "Commands:\n"
    "  run NAME MAX [OPTIONS] -- CMD [ARGS...]  run CMD while holding one ticket\n"
    "  status NAME [--exact] [--json]           show a semaphore's state and holders\n"
    "  list                                     list the semaphores of this machine\n"
    "  rm NAME [--exact] [--force]              remove a semaphore's name\n"
    "  name NAME                                print the finalized form of NAME\n"
    "  help [COMMAND]                           show help (also: COMMAND --help)\n"
    "\n"
    "Names are UTF-8 and finalized like C# DistributedLock's\n"
    "WaitHandleDistributedSemaphore: \"abc\" means \"Global\\abc\". With --exact the\n"
    "name is used as given and must already be a finalized name.\n"
    "\n"
    "Options:\n"
    "  -h, --help     show this help and exit\n"
    "  -V, --version  show the version and exit\n";

static const char usage_run[] =
    "Usage: whsem run NAME MAX [-t TIMEOUT_MS] [-E CODE] [-k DURATION | --no-kill] [--exact]\n"
    "                 [--] CMD [ARGS...]\n";

static const char help_run[] =
    "Open (creating if needed) the semaphore NAME with MAX tickets, wait for one\n"
    "ticket, run CMD while holding it, then release it. Everything after `--`\n"
    "(or from the first argument after NAME and MAX) is the command.\n"
    "\n"
    "Options:\n"
    "  -t, --timeout=MS            wait at most MS milliseconds for a ticket;\n"
    "                              0 tries once, -1 (the default) waits forever\n"
    "  -E, --timeout-exit-code=N   exit with N (0-255) on timeout (default 75)\n"
    "  -k, --kill-after=DURATION   when CMD exits, SIGKILL what is left of its\n"
    "                              process group DURATION after the SIGTERM\n"
    "                              (default 5s; milliseconds, or e.g. 500ms, 10s)\n"
    "      --no-kill               when CMD exits, release the ticket at once and\n"
    "                              leave what CMD started running (see below)\n"
    "      --exact                 NAME is already finalized (\"Global\\...\")\n"
    "  -h, --help                  show this help and exit\n"
    "\n"
    "MAX is 1 ... 2147483647; an existing semaphore must have the same MAX.\n"
    "\n"
    "Exit status:\n"
    "  the command's exit status, or 128+N if it was killed by signal N;\n"
    "  75 (or -E N)  no ticket within the timeout (the command did not run);\n"
    "                75 is EX_TEMPFAIL from sysexits.h, chosen by whsem (flock -w\n"
    "                exits 1 on a timeout, timeout(1) 124);\n"
    "  128+N         signal N (INT, TERM, HUP, QUIT) interrupted the wait\n"
    "                (the command did not run);\n"
    "  125           whsem or libwhsem failed;\n"
    "  126           CMD was found but could not be run;\n"
    "  127           CMD was not found;\n"
    "  2             usage error.\n"
    "\n"
    "Background processes: CMD runs in a process group of its own, and the\n"
    "ticket is held until CMD and everything it started are gone, as flock(1)'s\n"
    "lock lasts while any process keeps the inherited descriptor. When CMD\n"
    "exits, whsem sends SIGTERM to its process group (and SIGCONT, for stopped\n"
    "members), SIGKILL after the --kill-after delay to whatever of it is left,\n"
    "then waits for every remaining descendant: whsem is their child subreaper,\n"
    "so orphans become its children. Descendants that left the group (setsid,\n"
    "daemons) are not signalled, but still waited for. With --no-kill, whsem\n"
    "neither signals nor waits: the ticket is released when CMD exits, and what\n"
    "it left running goes on without a ticket, alongside the next holder.\n"
    "\n"
    "Signals: SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH and\n"
    "SIGCONT sent to whsem are passed on to CMD's process group, whose exit then\n"
    "ends whsem (once CMD is gone, to the descendants whsem still waits for that\n"
    "are its children). While whsem still waits for its ticket, SIGINT, SIGTERM,\n"
    "SIGHUP and SIGQUIT end the wait (the command never starts) and the others\n"
    "are ignored. Signals that were ignored when whsem started stay ignored, for\n"
    "whsem and the command.\n"
    "\n"
    "Terminal: when whsem is in the foreground of its terminal (and does not\n"
    "ignore SIGINT, as scripts' background jobs do), CMD's group becomes the\n"
    "foreground while CMD runs, as a shell does for a job: CMD reads the\n"
    "terminal, and Ctrl-C, Ctrl-\\ and Ctrl-Z reach CMD's group alone; whsem\n"
    "takes the terminal back when CMD exits. A CMD that stops to use the\n"
    "terminal (SIGTTIN, SIGTTOU) gets it if whsem's group has it. When CMD stops\n"
    "for job control (Ctrl-Z, SIGTSTP, terminal use in the background), whsem\n"
    "stops its own process group too, so that the shell sees the job stop;\n"
    "`fg` and `bg` resume CMD with it. A SIGTSTP sent to whsem alone stops only\n"
    "whsem (the command keeps running and keeps the ticket).\n"
    "\n"
    "Crash safety: the command inherits one extra open file descriptor (a\n"
    "read-only reference to the semaphore's shared segment, like flock(1)'s lock\n"
    "file descriptor; it allows no writing or truncating, even to a command\n"
    "that changes user). The ticket stays taken while whsem or any process holding that\n"
    "descriptor lives, so if whsem is killed the ticket returns only once the\n"
    "command (and any descendant that kept the descriptor) is gone. The command\n"
    "is also killed (SIGKILL) when whsem dies. Background processes that must\n"
    "not extend the ticket past whsem's death should close the descriptor.\n";

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
    "Options:\n"
    "      --exact  NAME is already finalized (\"Global\\...\")\n"
    "      --json   print one JSON object instead of text\n"
    "  -h, --help   show this help and exit\n"
    "\n"
    "Exit status: 0 on success, 1 if NAME does not exist or on any failure,\n"
    "2 on a usage error.\n";

static const char usage_list[] = "Usage: whsem list\n";

static const char help_list[] =
    "Print the finalized name of every semaphore on this machine that you can\n"
    "see, one per line, sorted. Control characters are written as \\xHH (C1\n"
    "controls and bidirectional overrides as \\uHHHH), so every line is one name.\n"
    "\n"
    "Options:\n"
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
    "  -h, --help   show this help and exit\n"
    "\n"
    "Exit status: 0 on success, 1 on failure, 2 on a usage error.\n";

static const char usage_name[] = "Usage: whsem name NAME\n";

static const char help_name[] =
    "Print the finalized form of NAME (what every libwhsem and C#\n"
    "DistributedLock user means by it), e.g. `whsem name abc` prints\n"
    "Global\\abc. The result can be passed back with --exact.\n"
    "\n"
    "Options:\n"
    "  -h, --help  show this help and exit\n"
    "\n"
    "Exit status: 0 on success, 1 if NAME is not valid UTF-8, 2 on a usage error.\n";

struct command {
    const char *name;
    const char *usage;
    const char *help;
    int (*main)(int argc, char **argv);
};

static const struct command *current_cmd;

static void show_help(const struct command *c)
{
    if (c) fputs(c->usage, stdout), fputc('\n', stdout), fputs(c->help, stdout);
    else fputs(usage_main, stdout), fputc('\n', stdout), fputs(help_main, stdout);
}

/* Reports a usage error of the current command and exits with 2. */
static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void usage_error(const char *fmt, ...)
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

static void lib_error(whsem_status st)
{
    fprintf(stderr, "whsem: %s: %s\n", whsem_status_name(st), whsem_last_error());
}

/* ---- Text output --------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at p (no overlongs, surrogates or
 * code points past U+10FFFF), 0 if there is none. */
static size_t utf8_len(const unsigned char *p, uint32_t *out_cp)
{
    unsigned c = p[0];
    size_t n;
    uint32_t cp;
    if (c < 0x80) {
        *out_cp = c;
        return 1;
    } else if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    for (size_t k = 1; k < n; k++) {
        if ((p[k] & 0xc0) != 0x80) return 0; /* also stops at the NUL */
        cp = cp << 6 | (p[k] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff))) return 0;
    if (cp >= 0xd800 && cp <= 0xdfff) return 0;
    *out_cp = cp;
    return n;
}

/* Code points a terminal would act on instead of showing: a name must not
 * be able to forge another line, move the cursor or reorder the text. */
static bool is_unsafe_cp(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || (cp >= 0x202a && cp <= 0x202e) ||
           (cp >= 0x2066 && cp <= 0x2069) || cp == 0x2028 || cp == 0x2029;
}

/* Names may come from files any local user can create, so they are
 * escaped for display. Finalized names contain no '\' after "Global\",
 * which keeps the escapes unambiguous without doubling backslashes. */
static void put_display(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        uint32_t cp;
        size_t n = utf8_len(p, &cp);
        if (n == 0) {
            fprintf(f, "\\x%02x", *p++);
        } else if (is_unsafe_cp(cp)) {
            if (cp < 0x80) fprintf(f, "\\x%02x", (unsigned)cp);
            else fprintf(f, "\\u%04x", (unsigned)cp);
            p += n;
        } else {
            fwrite(p, 1, n, f);
            p += n;
        }
    }
}

/* A JSON string; bytes that are not UTF-8 become U+FFFD so the output
 * stays valid JSON. */
static void put_json_string(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    fputc('"', f);
    while (*p) {
        uint32_t cp;
        size_t n = utf8_len(p, &cp);
        if (n == 0) {
            fputs("\\ufffd", f);
            p++;
            continue;
        }
        if (cp == '"' || cp == '\\') fprintf(f, "\\%c", (char)cp);
        else if (cp == '\n') fputs("\\n", f);
        else if (cp == '\t') fputs("\\t", f);
        else if (is_unsafe_cp(cp)) fprintf(f, "\\u%04x", (unsigned)cp);
        else fwrite(p, 1, n, f);
        p += n;
    }
    fputc('"', f);
}

/* Local time as ISO-8601 with seconds and UTC offset, e.g.
 * 2024-05-01T12:00:00+02:00. */
static void format_local_time(int64_t unix_ms, char *buf, size_t size)
{
    time_t t = (time_t)(unix_ms / 1000);
    struct tm tm;
    if (!localtime_r(&t, &tm)) {
        snprintf(buf, size, "@%" PRId64, unix_ms / 1000);
        return;
    }
    char date[32];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    long off = tm.tm_gmtoff;
    char sign = off < 0 ? '-' : '+';
    if (off < 0) off = -off;
    snprintf(buf, size, "%s%c%02ld:%02ld", date, sign, off / 3600, off / 60 % 60);
}

static void format_ago(int64_t ms, char *buf, size_t size)
{
    if (ms < 0) {
        snprintf(buf, size, "in the future by %" PRId64 "s", -ms / 1000);
        return;
    }
    int64_t s = ms / 1000;
    if (s < 60) snprintf(buf, size, "%" PRId64 "s ago", s);
    else if (s < 3600) snprintf(buf, size, "%" PRId64 "m%02" PRId64 "s ago", s / 60, s % 60);
    else if (s < 86400) snprintf(buf, size, "%" PRId64 "h%02" PRId64 "m ago", s / 3600, s / 60 % 60);
    else snprintf(buf, size, "%" PRId64 "d%02" PRId64 "h ago", s / 86400, s / 3600 % 24);
}

static int64_t now_unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- Argument parsing ------------------------------------------------ */

/* Parses a whole string as a decimal integer in [min, max]: no blanks, no
 * '+', no trailing garbage. */
static bool parse_int(const char *s, long min, long max, long *out)
{
    const char *digits = s[0] == '-' ? s + 1 : s;
    if (digits[0] < '0' || digits[0] > '9') return false;
    errno = 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max) return false;
    *out = v;
    return true;
}

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
    OPT_VERSION
};

/*
 * One step of option parsing over argv[*i]. Returns:
 *   an option id (with *arg set for options taking a value),
 *   0 for a positional argument (*arg = it),
 *   -1 for "--" (the caller decides what follows it).
 * Options may come before or after positionals; unknown ones are usage
 * errors.
 */
static int next_arg(char **argv, int argc, int *i, const struct optdef *defs, const char **arg)
{
    const char *a = argv[*i];
    (*i)++;
    *arg = NULL;
    if (strcmp(a, "--") == 0) return -1;
    if (a[0] != '-' || a[1] == '\0') {
        *arg = a;
        return 0;
    }
    if (a[1] == '-') {
        const char *body = a + 2;
        const char *eq = strchr(body, '=');
        size_t n = eq ? (size_t)(eq - body) : strlen(body);
        for (const struct optdef *d = defs; d->id; d++) {
            if (!d->long_name || strlen(d->long_name) != n || strncmp(d->long_name, body, n) != 0)
                continue;
            if (!d->has_arg) {
                if (eq) usage_error("option '--%s' takes no value", d->long_name);
                return d->id;
            }
            if (eq) *arg = eq + 1;
            else if (*i < argc) *arg = argv[(*i)++];
            else usage_error("option '--%s' needs a value", d->long_name);
            return d->id;
        }
        usage_error("unknown option '%s'", a);
    }
    for (const struct optdef *d = defs; d->id; d++) {
        if (d->short_name != a[1]) continue;
        if (!d->has_arg) {
            if (a[2]) usage_error("unknown option '%s'", a);
            return d->id;
        }
        if (a[2]) *arg = a + 2;
        else if (*i < argc) *arg = argv[(*i)++];
        else usage_error("option '-%c' needs a value", d->short_name);
        return d->id;
    }
    usage_error("unknown option '%s'", a);
}

/* Parses "[options] NAME" (options anywhere, "--" ends them) for the
 * commands that take exactly one name. Returns the name. */
static const char *parse_name_command(int argc, char **argv, const struct optdef *defs,
                                      void (*on_opt)(int id, void *ctx), void *ctx)
{
    const char *name = NULL;
    int i = 1;
    bool only_positionals = false;
    while (i < argc) {
        const char *arg;
        int id;
        if (only_positionals) {
            arg = argv[i++];
            id = 0;
        } else {
            id = next_arg(argv, argc, &i, defs, &arg);
        }
        if (id == -1) {
            only_positionals = true;
        } else if (id == 0) {
            if (name) usage_error("unexpected argument '%s'", arg);
            name = arg;
        } else if (id == OPT_HELP) {
            show_help(current_cmd);
            exit(0);
        } else {
            on_opt(id, ctx);
        }
    }
    if (!name) usage_error("missing NAME");
    return name;
}

/* ---- whsem run ---------------------------------------------------------- */

/*
 * PH_RUNNING: the command runs; signals go to its process group.
 * PH_ENDING:  it has exited, unreaped: its zombie keeps the process group
 *             id from being reused while whsem still signals the group.
 * PH_DRAINING: it is reaped; signals go to whsem's remaining children.
 */
enum phase { PH_WAITING, PH_RUNNING, PH_ENDING, PH_DRAINING, PH_DONE };

/*
 * Shared between the main thread and the signal thread. The lock orders
 * each signal against the phase changes and the reaping: a signal either
 * aborts the wait (and the command never starts) or goes to processes
 * that have not been reaped yet (so their ids cannot have been reused).
 */
static struct {
    pthread_mutex_t mu;
    enum phase phase;
    int abort_sig;
    pid_t child; /* the command, and the id of its process group */
    whsem_cancel cancel;
    sigset_t handled;
    int tty;        /* the controlling terminal, -1 if none */
    bool give_tty;  /* may make the command the terminal's foreground */
    unsigned conts; /* SIGCONTs the signal thread has seen */
} rs = {.mu = PTHREAD_MUTEX_INITIALIZER, .tty = -1};

static const int forwarded_signals[] = {SIGHUP,  SIGINT,  SIGQUIT,  SIGTERM,
                                        SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT};

static bool aborts_wait(int sig)
{
    return sig == SIGINT || sig == SIGTERM || sig == SIGHUP || sig == SIGQUIT;
}

/* From a background group, tcsetpgrp() would stop us with SIGTTOU. */
static void set_foreground(pid_t pgrp)
{
    sigset_t ttou, old;
    sigemptyset(&ttou);
    sigaddset(&ttou, SIGTTOU);
    pthread_sigmask(SIG_BLOCK, &ttou, &old);
    tcsetpgrp(rs.tty, pgrp);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* Whether whsem's own group holds the terminal, as a shell's foreground
 * job does, so that it should pass it to the command. */
static bool we_have_the_terminal(void)
{
    return rs.tty >= 0 && rs.give_tty && tcgetpgrp(rs.tty) == getpgrp();
}

/* With rs.mu held. After `fg` the command gets the terminal back; after
 * `bg` it goes on in the background, as whsem does. */
static void resume_command(void)
{
    if (we_have_the_terminal()) set_foreground(rs.child);
    kill(-rs.child, SIGCONT);
}

/*
 * Calls fn on each child of whsem. Orphaned descendants are re-parented
 * to the main thread (the first live thread of a subreaper), which also
 * forked the command, so its list is complete. False if the kernel cannot
 * list children (no CONFIG_PROC_CHILDREN).
 */
static bool each_child(void (*fn)(pid_t pid, void *ctx), void *ctx)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%ld/children", (long)getpid());
    FILE *f = fopen(path, "re");
    if (!f) return false;
    long pid;
    while (fscanf(f, "%ld", &pid) == 1) fn((pid_t)pid, ctx);
    fclose(f);
    return true;
}

static void signal_child(pid_t pid, void *ctx)
{
    kill(pid, *(int *)ctx);
}

static void *signal_thread(void *unused)
{
    (void)unused;
    for (;;) {
        siginfo_t si;
        int sig = sigwaitinfo(&rs.handled, &si);
        if (sig < 0) continue; /* EINTR (e.g. after SIGSTOP/SIGCONT) */
        pthread_mutex_lock(&rs.mu);
        switch (rs.phase) {
        case PH_WAITING:
            if (aborts_wait(sig) && rs.abort_sig == 0) {
                rs.abort_sig = sig;
                whsem_cancel_trigger(rs.cancel);
            }
            break;
        case PH_RUNNING:
            /* The command has its own group, so whatever reached us (a
             * kill, the hangup only a session leader gets, the terminal
             * while our group has it) has not reached the command. */
            if (sig == SIGCONT) {
                rs.conts++;
                resume_command();
            } else {
                kill(-rs.child, sig);
            }
            break;
        case PH_ENDING:
            kill(-rs.child, sig);
            break;
        case PH_DRAINING:
            /* Reaping takes rs.mu too, so every listed pid is still ours. */
            each_child(signal_child, &sig);
            break;
        case PH_DONE:
            break;
        }
        pthread_mutex_unlock(&rs.mu);
    }
    return NULL;
}

struct run_args {
    const char *name;
    int32_t max;
    int64_t timeout_ms;
    int64_t kill_after_ms;
    int timeout_exit;
    bool exact;
    bool no_kill;
    char **cmd;
};

/* Milliseconds, or a number followed by "ms" or "s". */
static bool parse_duration_ms(const char *s, int64_t *out)
{
    if (s[0] < '0' || s[0] > '9') return false;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    long long unit = strcmp(end, "s") == 0 ? 1000 : 1;
    if (errno != 0 || (*end && unit == 1 && strcmp(end, "ms") != 0) || v > INT32_MAX / unit)
        return false;
    *out = v * unit;
    return true;
}

static void parse_run(int argc, char **argv, struct run_args *ra)
{
    static const struct optdef defs[] = {
        {"help", 'h', false, OPT_HELP},
        {"timeout", 't', true, OPT_TIMEOUT},
        {"timeout-exit-code", 'E', true, OPT_EXIT_CODE},
        {"kill-after", 'k', true, OPT_KILL_AFTER},
        {"no-kill", 0, false, OPT_NO_KILL},
        {"exact", 0, false, OPT_EXACT},
        {NULL, 0, false, 0},
    };
    const char *max_text = NULL;
    bool kill_after_given = false;
    ra->name = NULL;
    ra->timeout_ms = WHSEM_INFINITE;
    ra->kill_after_ms = 5000;
    ra->timeout_exit = EXIT_TEMPFAIL;
    ra->exact = false;
    ra->no_kill = false;
    ra->cmd = NULL;
    int i = 1;
    while (i < argc && !ra->cmd) {
        const char *arg;
        long v;
        int id = next_arg(argv, argc, &i, defs, &arg);
        switch (id) {
        case -1:
            if (!ra->name || !max_text) usage_error("NAME and MAX must come before '--'");
            ra->cmd = argv + i;
            if (i >= argc) usage_error("missing the command after '--'");
            break;
        case 0:
            if (!ra->name) ra->name = arg;
            else if (!max_text) max_text = arg;
            else ra->cmd = argv + i - 1; /* flock(1) style: no "--" needed */
            break;
        case OPT_HELP:
            show_help(current_cmd);
            exit(0);
        case OPT_TIMEOUT:
            if (!parse_int(arg, -1, INT32_MAX, &v))
                usage_error("invalid timeout '%s': use milliseconds 0 ... %d, or -1 for none", arg,
                            INT32_MAX);
            ra->timeout_ms = v;
            break;
        case OPT_EXIT_CODE:
            if (!parse_int(arg, 0, 255, &v)) usage_error("invalid exit code '%s': use 0 ... 255", arg);
            ra->timeout_exit = (int)v;
            break;
        case OPT_KILL_AFTER:
            if (!parse_duration_ms(arg, &ra->kill_after_ms))
                usage_error("invalid duration '%s': use milliseconds 0 ... %d, or e.g. 5s", arg,
                            INT32_MAX);
            kill_after_given = true;
            break;
        case OPT_NO_KILL:
            ra->no_kill = true;
            break;
        case OPT_EXACT:
            ra->exact = true;
            break;
        }
    }
    if (!ra->name) usage_error("missing NAME");
    if (!max_text) usage_error("missing MAX");
    long max;
    if (!parse_int(max_text, 1, INT32_MAX, &max))
        usage_error("invalid MAX '%s': use 1 ... %d", max_text, INT32_MAX);
    ra->max = (int32_t)max;
    if (!ra->cmd) usage_error("missing the command to run");
    if (ra->no_kill && kill_after_given)
        usage_error("--no-kill and --kill-after exclude each other");
}

/*
 * The command stopped on sig. A shell's job control sees only whsem's
 * process group, so a job-control stop becomes a stop of that group, as
 * the terminal would have stopped it had the command still been in it.
 */
static void command_stopped(int sig)
{
    if (rs.tty < 0 || (sig != SIGTSTP && sig != SIGTTIN && sig != SIGTTOU)) return;
    pthread_mutex_lock(&rs.mu);
    pid_t fg = tcgetpgrp(rs.tty);
    if (sig != SIGTSTP && fg == getpgrp()) {
        /* It tried the terminal our group holds (we did not hand it over
         * at the start, e.g. a script's background job). */
        set_foreground(rs.child);
        kill(-rs.child, SIGCONT);
        pthread_mutex_unlock(&rs.mu);
        return;
    }
    if (fg == rs.child) set_foreground(getpgrp());
    unsigned conts = rs.conts;
    pthread_mutex_unlock(&rs.mu);
    /* SIGSTOP for terminal access: the kernel drops SIGTTIN and SIGTTOU for
     * an orphaned group, and the command would stop again at once. */
    kill(0, sig == SIGTSTP ? SIGTSTP : SIGSTOP);
    sigset_t pending;
    sigpending(&pending);
    pthread_mutex_lock(&rs.mu);
    /* No SIGCONT for the signal thread: we did not stop (SIGTSTP ignored,
     * or dropped for an orphaned group, as under `ssh -t`), or it is
     * ignored. Nobody else would resume the command. */
    if (rs.conts == conts && !sigismember(&pending, SIGCONT)) resume_command();
    pthread_mutex_unlock(&rs.mu);
}

struct others {
    pid_t command;
    bool any;
};

static void note_live_other(pid_t pid, void *ctx)
{
    struct others *o = ctx;
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (pid == o->command) return;
    /* WNOWAIT: reaping would change the list while it is read. Zombies are
     * reaped by wait_for_descendants(). */
    if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0 || si.si_pid == 0)
        o->any = true;
}

/*
 * Ends what the command left in its process group: SIGTERM, and SIGKILL
 * after kill_after_ms unless every other child of ours has exited first.
 * Then nothing is left: a live descendant has a live ancestor among our
 * children, as orphans are re-parented to us. Without a list of children
 * there is no SIGKILL; wait_for_descendants() still waits for them all.
 */
static void end_group(pid_t pgid, int64_t kill_after_ms)
{
    kill(-pgid, SIGTERM);
    kill(-pgid, SIGCONT); /* a stopped process would not see the SIGTERM */
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t deadline = now.tv_sec * INT64_C(1000000000) + now.tv_nsec + kill_after_ms * 1000000;
    for (;;) {
        struct others o = {pgid, false};
        if (!each_child(note_live_other, &o) || !o.any) return;
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t left = deadline - (now.tv_sec * INT64_C(1000000000) + now.tv_nsec);
        if (left <= 0) {
            kill(-pgid, SIGKILL);
            return;
        }
        struct timespec ts = {(time_t)(left / 1000000000), (long)(left % 1000000000)};
        sigtimedwait(&chld, NULL, &ts); /* a child ended, or time is up */
    }
}

/* What left the group (setsid) was not ours to kill, but it runs under our
 * ticket, as under flock(1)'s lock: wait for it, and for what is dying. */
static void wait_for_descendants(void)
{
    for (;;) {
        siginfo_t si;
        memset(&si, 0, sizeof si);
        if (waitid(P_ALL, 0, &si, WEXITED | WNOWAIT) != 0) {
            if (errno == EINTR) continue;
            return; /* ECHILD: every descendant is gone */
        }
        /* Reaped under the lock that the signal thread takes to signal
         * our children, so it never signals a reused pid. */
        pthread_mutex_lock(&rs.mu);
        waitid(P_PID, (id_t)si.si_pid, &si, WEXITED | WNOHANG);
        pthread_mutex_unlock(&rs.mu);
    }
}

/* Runs the command (we hold the ticket) and returns the exit status for
 * whsem. live_fd is the liveness descriptor the command inherits. */
static int run_command(const struct run_args *ra, int live_fd, const sigset_t *orig_mask,
                       bool chld_ignored)
{
    char **cmd = ra->cmd;
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0) {
        fprintf(stderr, "whsem: cannot create a pipe: %s\n", strerror(errno));
        pthread_mutex_unlock(&rs.mu);
        close(live_fd);
        return EXIT_FAILED;
    }
    /* Orphaned descendants (daemons) become our children, to be waited for. */
    if (!ra->no_kill) prctl(PR_SET_CHILD_SUBREAPER, 1);
    rs.tty = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
    bool give_tty = we_have_the_terminal();
    pid_t parent = getpid();
    /* Forked by the main thread, which lives as long as the process:
     * PR_SET_PDEATHSIG fires when the forking thread ends. */
    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        /* whsem may have died before the prctl took effect. */
        if (getppid() != parent) _exit(EXIT_FAILED);
        /* Its own group, so that what it leaves behind can be signalled as
         * one; the foreground before exec, so that it can read at once. */
        setpgid(0, 0);
        if (give_tty) set_foreground(getpid());
        if (chld_ignored) sigaction(SIGCHLD, &(struct sigaction){.sa_handler = SIG_IGN}, NULL);
        sigprocmask(SIG_SETMASK, orig_mask, NULL);
        execvp(cmd[0], cmd);
        int e = errno;
        ssize_t unused = write(pfd[1], &e, sizeof e);
        (void)unused;
        _exit(e == ENOENT || e == ENOTDIR ? EXIT_ENOENT : EXIT_CANNOT_INVOKE);
    }
    int fork_errno = errno;
    if (pid > 0) {
        setpgid(pid, pid); /* before any kill(-pid); fails harmlessly after exec */
        rs.child = pid;
        rs.phase = PH_RUNNING;
    }
    pthread_mutex_unlock(&rs.mu);
    close(pfd[1]);
    close(live_fd);
    if (pid < 0) {
        close(pfd[0]);
        if (rs.tty >= 0) close(rs.tty);
        fprintf(stderr, "whsem: cannot fork: %s\n", strerror(fork_errno));
        return EXIT_FAILED;
    }

    int exec_errno = 0;
    ssize_t n;
    do n = read(pfd[0], &exec_errno, sizeof exec_errno);
    while (n < 0 && errno == EINTR);
    close(pfd[0]);
    if (n != (ssize_t)sizeof exec_errno) exec_errno = 0;

    /* Wait without reaping the command: its process group must not go
     * while we may signal it. Other children are orphans: reap them. */
    siginfo_t si;
    for (;;) {
        memset(&si, 0, sizeof si);
        if (waitid(P_ALL, 0, &si, WEXITED | WSTOPPED | WNOWAIT) != 0) {
            if (errno == EINTR) continue;
            break; /* cannot happen while the command is unreaped */
        }
        siginfo_t other;
        if (si.si_pid != pid) {
            waitid(P_PID, (id_t)si.si_pid, &other, WEXITED | WSTOPPED | WNOHANG);
        } else if (si.si_code == CLD_STOPPED) {
            waitid(P_PID, (id_t)pid, &other, WSTOPPED | WNOHANG);
            command_stopped(si.si_status);
        } else {
            break;
        }
    }

    pthread_mutex_lock(&rs.mu);
    if (rs.tty >= 0 && tcgetpgrp(rs.tty) == pid) set_foreground(getpgrp());
    rs.phase = ra->no_kill ? PH_DONE : PH_ENDING;
    pthread_mutex_unlock(&rs.mu);
    if (!ra->no_kill) end_group(pid, ra->kill_after_ms);

    pthread_mutex_lock(&rs.mu);
    if (!ra->no_kill) rs.phase = PH_DRAINING;
    int wst = 0;
    while (waitpid(pid, &wst, 0) < 0 && errno == EINTR) {
    }
    pthread_mutex_unlock(&rs.mu);
    if (!ra->no_kill) {
        wait_for_descendants();
        pthread_mutex_lock(&rs.mu);
        rs.phase = PH_DONE;
        pthread_mutex_unlock(&rs.mu);
    }
    if (rs.tty >= 0) close(rs.tty);

    if (exec_errno) {
        fputs("whsem: ", stderr);
        put_display(stderr, cmd[0]);
        fprintf(stderr, ": %s\n", strerror(exec_errno));
        return exec_errno == ENOENT || exec_errno == ENOTDIR ? EXIT_ENOENT : EXIT_CANNOT_INVOKE;
    }
    if (WIFEXITED(wst)) return WEXITSTATUS(wst);
    if (WIFSIGNALED(wst)) return 128 + WTERMSIG(wst);
    return EXIT_FAILED;
}

static int run_main(int argc, char **argv)
{
    struct run_args ra;
    parse_run(argc, argv, &ra);

    /*
     * Signals are taken synchronously by a dedicated thread: it may call
     * libwhsem (which a signal handler may not) to cancel the wait. They
     * are blocked before any thread exists so that every thread inherits
     * the mask; the command gets the original mask back. A signal that
     * was ignored at startup (nohup, `cmd &` in scripts) stays ignored:
     * the command inherits the SIG_IGN and we never wait for it.
     */
    sigset_t block, orig_mask;
    sigemptyset(&rs.handled);
    for (size_t k = 0; k < sizeof forwarded_signals / sizeof forwarded_signals[0]; k++) {
        struct sigaction sa;
        if (sigaction(forwarded_signals[k], NULL, &sa) == 0 && sa.sa_handler == SIG_IGN) continue;
        sigaddset(&rs.handled, forwarded_signals[k]);
    }
    /* Scripts run background jobs with SIGINT ignored: such a whsem must
     * not take the terminal from the script. */
    rs.give_tty = sigismember(&rs.handled, SIGINT);
    block = rs.handled;
    /* A vanished stderr must give write() an EPIPE, not kill us while the
     * command runs; the command still gets SIGPIPE as usual. */
    sigaddset(&block, SIGPIPE);
    /* Kept pending for end_group()'s sigtimedwait(). */
    sigaddset(&block, SIGCHLD);
    pthread_sigmask(SIG_BLOCK, &block, &orig_mask);
    /* An inherited SIG_IGN would reap the command for us and lose its
     * status; the command gets it back. */
    bool chld_ignored = signal(SIGCHLD, SIG_DFL) == SIG_IGN;

    whsem_status st = whsem_cancel_new(&rs.cancel);
    if (st != WHSEM_OK) {
        lib_error(st);
        return EXIT_FAILED;
    }
    pthread_t tid;
    int e = pthread_create(&tid, NULL, signal_thread, NULL);
    if (e != 0) {
        fprintf(stderr, "whsem: cannot create the signal thread: %s\n", strerror(e));
        return EXIT_FAILED;
    }

    whsem_open_options opts;
    memset(&opts, 0, sizeof opts);
    opts.struct_size = sizeof opts;
    opts.flags = ra.exact ? WHSEM_OPEN_EXACT_NAME : 0;
    whsem_sem sem = 0;
    st = whsem_open(ra.name, ra.max, &opts, &sem);
    if (st != WHSEM_OK) {
        lib_error(st);
        return EXIT_FAILED;
    }
    char final[1024];
    size_t final_len;
    if (whsem_name(sem, final, sizeof final, &final_len) != WHSEM_OK)
        snprintf(final, sizeof final, "%s", ra.name);

    whsem_ticket ticket = 0;
    st = whsem_acquire(sem, ra.timeout_ms, rs.cancel, &ticket);
    bool have_ticket = st == WHSEM_OK;
    if (have_ticket) {
        /* The uncontended acquire leaves "held since" to the next scan;
         * a query scans now, so `whsem status` shows when we got it. */
        size_t holders;
        whsem_query(sem, NULL, NULL, 0, &holders);
    }

    int status;
    pthread_mutex_lock(&rs.mu);
    int abort_sig = rs.abort_sig;
    if (abort_sig) {
        /* Even if the ticket came in the meantime: the user asked us to
         * stop before the command started. */
        pthread_mutex_unlock(&rs.mu);
        status = 128 + abort_sig;
        const char *abbrev = sigabbrev_np(abort_sig);
        fprintf(stderr, "whsem: interrupted by SIG%s while waiting for a ticket of '",
                abbrev ? abbrev : "?");
        put_display(stderr, final);
        fputs("'\n", stderr);
    } else if (st == WHSEM_TIMEOUT) {
        pthread_mutex_unlock(&rs.mu);
        status = ra.timeout_exit;
        fprintf(stderr, "whsem: timed out after %" PRId64 " ms waiting for a ticket of '",
                ra.timeout_ms);
        put_display(stderr, final);
        fprintf(stderr, "' (max %" PRId32 ")\n", ra.max);
    } else if (st != WHSEM_OK) {
        pthread_mutex_unlock(&rs.mu);
        lib_error(st);
        status = EXIT_FAILED;
    } else {
        int live_fd = -1;
        st = whsem__share_liveness(sem, &live_fd);
        if (st != WHSEM_OK) {
            pthread_mutex_unlock(&rs.mu);
            lib_error(st);
            status = EXIT_FAILED;
        } else {
            status = run_command(&ra, live_fd, &orig_mask, chld_ignored); /* unlocks rs.mu */
        }
    }

    if (have_ticket && (st = whsem_release(ticket)) != WHSEM_OK) {
        /* The command's status matters more to the caller; the ticket goes
         * back anyway when we exit. */
        lib_error(st);
    }
    if ((st = whsem_close(sem)) != WHSEM_OK) lib_error(st);
    return status;
}

/* ---- whsem status --------------------------------------------------------- */

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
        char since[128] = "-";
        if (h[k].since_unix_ms) {
            char when[64], ago[48];
            format_local_time(h[k].since_unix_ms, when, sizeof when);
            format_ago(now - h[k].since_unix_ms, ago, sizeof ago);
            snprintf(since, sizeof since, "%s (%s)", when, ago);
        }
        printf("%-10" PRId64 " %-8" PRId32 " %-42s %" PRIu32 "\n", h[k].pid, h[k].tickets, since,
               h[k].waiting);
    }
}

static int status_main(int argc, char **argv)
{
    static const struct optdef defs[] = {
        {"help", 'h', false, OPT_HELP},
        {"exact", 0, false, OPT_EXACT},
        {"json", 0, false, OPT_JSON},
        {NULL, 0, false, 0},
    };
    struct status_opts o = {false, false};
    const char *name = parse_name_command(argc, argv, defs, status_opt, &o);

    whsem_open_options opts;
    memset(&opts, 0, sizeof opts);
    opts.struct_size = sizeof opts;
    opts.flags = o.exact ? WHSEM_OPEN_EXACT_NAME : 0;
    whsem_sem sem;
    whsem_status st = whsem_open_existing(name, &opts, &sem);
    if (st == WHSEM_E_NOT_FOUND) {
        char final[1024];
        size_t len;
        fputs("whsem: no semaphore named '", stderr);
        if (o.exact || whsem_safe_name(name, final, sizeof final, &len) != WHSEM_OK)
            put_display(stderr, name);
        else put_display(stderr, final);
        fputs("'\n", stderr);
        return 1;
    }
    if (st != WHSEM_OK) {
        lib_error(st);
        return 1;
    }
    char final[1024];
    size_t len;
    if (whsem_name(sem, final, sizeof final, &len) != WHSEM_OK) snprintf(final, sizeof final, "%s", name);

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
        {NULL, 0, false, 0},
    };
    for (int i = 1; i < argc;) {
        const char *arg;
        int id = next_arg(argv, argc, &i, defs, &arg);
        if (id == OPT_HELP) {
            show_help(current_cmd);
            return 0;
        }
        if (id == 0) usage_error("unexpected argument '%s'", arg);
    }

    char *buf = NULL;
    size_t size = 0, need = 0;
    whsem_status st;
    for (;;) {
        st = whsem_list(buf, size, &need);
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
        {NULL, 0, false, 0},
    };
    struct rm_opts o = {false, false};
    const char *name = parse_name_command(argc, argv, defs, rm_opt, &o);
    uint32_t flags = (o.exact ? WHSEM_OPEN_EXACT_NAME : 0) | (o.force ? WHSEM_UNLINK_FORCE : 0);
    whsem_status st = whsem_unlink(name, flags);
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

/* ---- main ---------------------------------------------------------------- */

static int help_main_cmd(int argc, char **argv);

static const struct command commands[] = {
    {"run", usage_run, help_run, run_main},
    {"status", usage_status, help_status, status_main},
    {"list", usage_list, help_list, list_main},
    {"rm", usage_rm, help_rm, rm_main},
    {"name", usage_name, help_name, name_main},
    {"help", "Usage: whsem help [COMMAND]\n", "Show help for whsem or for COMMAND.\n", help_main_cmd},
};

static const struct command *find_command(const char *name)
{
    for (size_t k = 0; k < sizeof commands / sizeof commands[0]; k++)
        if (strcmp(commands[k].name, name) == 0) return &commands[k];
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
