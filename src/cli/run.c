// SPDX-License-Identifier: MIT
/*
 * whsem run: hold one ticket while a command runs. The command, and whatever
 * it starts, must never keep running without the ticket it was started
 * under, and signals and the terminal must behave as the user of flock(1),
 * timeout(1) or a shell expects. See run_main() and run_command().
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char usage_run[] =
    "Usage: whsem run NAME MAX [-t TIMEOUT] [-E CODE] [-k DURATION | --no-kill]\n"
    "                 [--exact] [--mode OCTAL] [--] CMD [ARGS...]\n";

static const char help_run[] =
    "Open (creating if needed) the semaphore NAME with MAX tickets, wait for one\n"
    "ticket, run CMD while holding it, then release it. Everything after `--`\n"
    "(or from the first argument after NAME and MAX) is the command.\n"
    "\n"
    "Options:\n"
    "  -t, --timeout=DURATION      wait at most DURATION for a ticket; 0 tries\n"
    "                              once, -1 (the default) waits forever\n"
    "  -E, --timeout-exit-code=N   exit with N (0-255) on timeout (default 75)\n"
    "  -k, --kill-after=DURATION   when CMD exits, SIGKILL what is left of its\n"
    "                              process group DURATION after the SIGTERM\n"
    "                              (default 5s)\n"
    "      --no-kill               when CMD exits, release the ticket at once and\n"
    "                              leave what CMD started running (see below)\n"
    "      --exact                 NAME is already finalized (\"Global\\...\")\n"
    "      --mode=OCTAL            permission bits of NAME's file if this run\n"
    "                              creates it: 0600 (the default) to 0777, owner\n"
    "                              read and write included; e.g. 0660 shares it\n"
    "                              with your group, 0666 with every user (the\n"
    "                              mode the C# binding creates names with). Not\n"
    "                              with --backend\n"
    "      --backend=CONNINFO      a PostgreSQL database instead of this machine\n"
    "                              (libpq connection string or postgresql:// URI;\n"
    "                              default $WHSEM_BACKEND): every machine that\n"
    "                              reaches it shares NAME\n"
    "  -h, --help                  show this help and exit\n"
    "\n"
    "MAX is 1 ... 2147483647; an existing semaphore must have the same MAX.\n"
    "A DURATION is a number with a unit, ms, s, m or h (500ms, 5s, 1.5s, 2m,\n"
    "1h), or a plain number of milliseconds; at most 2147483647ms.\n"
    "\n"
    "Exit status:\n"
    "  the command's exit status, or 128+N if it was killed by signal N;\n"
    "  75 (or -E N)  no ticket within the timeout (the command did not run);\n"
    "                75 is EX_TEMPFAIL from sysexits.h, chosen by whsem (flock -w\n"
    "                exits 1 on a timeout, timeout(1) 124);\n"
    "  128+N         signal N (INT, TERM, HUP, QUIT) interrupted the wait\n"
    "                (the command did not run);\n"
    "  125           whsem or libwhsem failed, or (PostgreSQL) the ticket was\n"
    "                lost (see below);\n"
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
    "not extend the ticket past whsem's death should close the descriptor.\n"
    "With --backend the ticket lives in whsem's database session instead: the\n"
    "command inherits no descriptor, and dies with whsem.\n"
    "\n"
    "Lost tickets (--backend): if whsem's session ends while the command runs\n"
    "(the server restarted, an administrator ended it, the network failed for\n"
    "about three connection checks), another process may hold the ticket now.\n"
    "whsem then stops the command as if it had exited (SIGTERM to its process\n"
    "group, SIGKILL after the --kill-after delay), says so, and exits 125.\n";


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
    bool lost;      /* the ticket was lost (PostgreSQL): the command stops */
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

/* The ticket's watch (PostgreSQL), on a library thread. A command must
 * not go on as if it held a ticket that another process may hold now: it
 * is stopped as if it had exited (SIGTERM to its group, then the usual
 * --kill-after), or never started. */
static void ticket_lost(whsem_ticket ticket, whsem_status status, void *unused)
{
    (void)ticket, (void)unused;
    if (status != WHSEM_E_TICKET_LOST) return; /* released: nothing was lost */
    pthread_mutex_lock(&rs.mu);
    rs.lost = true;
    if (rs.phase == PH_RUNNING) {
        kill(-rs.child, SIGTERM);
        kill(-rs.child, SIGCONT);
    }
    pthread_mutex_unlock(&rs.mu);
}

struct run_args {
    const char *name;
    int32_t max;
    int64_t timeout_ms;
    int64_t kill_after_ms;
    int timeout_exit;
    uint32_t mode;
    bool exact;
    bool no_kill;
    char **cmd;
};

/* Octal permission bits that the library accepts for a new segment:
 * within 0777, with the owner's read and write (it must use the file). */
static bool parse_mode(const char *s, uint32_t *out)
{
    uint32_t v = 0;
    if (!*s || strlen(s) > 4) return false;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '7') return false;
        v = v * 8 + (uint32_t)(*p - '0');
    }
    if (v > 0777 || (v & 0600) != 0600) return false;
    *out = v;
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
        {"mode", 0, true, OPT_MODE},
        BACKEND_OPTDEF,
        {NULL, 0, false, 0},
    };
    const char *max_text = NULL;
    bool kill_after_given = false;
    ra->name = NULL;
    ra->timeout_ms = WHSEM_INFINITE;
    ra->kill_after_ms = 5000;
    ra->timeout_exit = EXIT_TEMPFAIL;
    ra->mode = 0;
    ra->exact = false;
    ra->no_kill = false;
    ra->cmd = NULL;
    int i = 1;
    while (i < argc && !ra->cmd) {
        const char *arg, *why;
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
            if (strcmp(arg, "-1") == 0) ra->timeout_ms = WHSEM_INFINITE;
            else if (!parse_duration_ms(arg, INT32_MAX, &ra->timeout_ms, &why))
                usage_error("invalid timeout '%s': %s; use a duration " DURATION_FORMS
                            " up to %dms, or -1 to wait forever",
                            arg, why, INT32_MAX);
            break;
        case OPT_EXIT_CODE:
            if (!parse_int(arg, 0, 255, &v)) usage_error("invalid exit code '%s': use 0 ... 255", arg);
            ra->timeout_exit = (int)v;
            break;
        case OPT_KILL_AFTER:
            if (!parse_duration_ms(arg, INT32_MAX, &ra->kill_after_ms, &why))
                usage_error("invalid --kill-after '%s': %s; use a duration " DURATION_FORMS
                            " up to %dms",
                            arg, why, INT32_MAX);
            kill_after_given = true;
            break;
        case OPT_NO_KILL:
            ra->no_kill = true;
            break;
        case OPT_EXACT:
            ra->exact = true;
            break;
        case OPT_MODE:
            if (!parse_mode(arg, &ra->mode))
                usage_error("invalid mode '%s': use octal permission bits from 0600 to 0777 that "
                            "include the owner's read and write (0600), e.g. 0660 or 0666",
                            arg);
            break;
        case OPT_BACKEND:
            set_backend(arg);
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
    /* Who may use a database's names is the database's GRANTs. */
    if (ra->mode && backend())
        usage_error("--mode sets the permissions of this machine's shared-memory file; a "
                    "PostgreSQL backend's access is the database's own");
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
    open_options(&opts, ra.exact ? WHSEM_OPEN_EXACT_NAME : 0);
    opts.mode = ra.mode;
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
        /* Tickets of this machine cannot be lost (WHSEM_E_UNSUPPORTED). */
        if (backend() && (st = whsem_ticket_watch(ticket, 0, ticket_lost, NULL)) != WHSEM_OK) {
            lib_error(st);
            st = WHSEM_OK;
        }
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
    } else if (rs.lost) {
        pthread_mutex_unlock(&rs.mu); /* the release below says why */
        status = EXIT_FAILED;
    } else {
        int32_t live_fd = -1;
        /* On PostgreSQL the ticket lives in whsem's session, and the
         * command dies with whsem (PR_SET_PDEATHSIG): nothing to hand on. */
        st = backend() ? WHSEM_OK : whsem_share_liveness(sem, &live_fd);
        if (st != WHSEM_OK) {
            pthread_mutex_unlock(&rs.mu);
            lib_error(st);
            status = EXIT_FAILED;
        } else {
            status = run_command(&ra, live_fd, &orig_mask, chld_ignored); /* unlocks rs.mu */
        }
    }

    if (have_ticket && (st = whsem_release(ticket)) == WHSEM_E_TICKET_LOST) {
        /* Whatever the command did after that, it did without a ticket. */
        lib_error(st);
        status = EXIT_FAILED;
    } else if (have_ticket && st != WHSEM_OK) {
        /* The command's status matters more to the caller; the ticket goes
         * back anyway when we exit. */
        lib_error(st);
    }
    if ((st = whsem_close(sem)) != WHSEM_OK) lib_error(st);
    return status;
}

const struct command cmd_run = {"run", usage_run, help_run, run_main};
