// SPDX-License-Identifier: MIT
/*
 * whsem top: every name of this machine (or of --backend's database) with
 * its state and counters, refreshed until q; plain ANSI escapes on a
 * terminal, plain frames elsewhere (batch mode, as top -b).
 *
 * Names are opened for each refresh and closed right after it: keeping
 * them open would count top among their processes and make `whsem rm`
 * refuse every name it shows.
 */
#include "cli.h"

#include <errno.h>
#include <locale.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static const char usage_top[] =
    "Usage: whsem top [-d DURATION] [-n COUNT] [-b] [--backend CONNINFO]\n";

static const char help_top[] =
    "Show every semaphore of this machine (or of --backend's database), refreshed\n"
    "every DURATION: its max count, free tickets, holders and waiters now, the\n"
    "acquisitions and timeouts per second since the last refresh, the median\n"
    "and 99th percentile of its wait times (from its wait histogram, since the\n"
    "name was created), and a sparkline of its waiters over the last minute\n"
    "(the most in each second, scaled to PEAK, the most in that minute). Names\n"
    "with waiters come first. \"-\" stands for what the backend does not keep,\n"
    "or for every column of a name that cannot be read (another user's, say).\n"
    "Names are shown without their Global\\ prefix.\n"
    "\n"
    "On a terminal it fills the screen until q (or Ctrl-C), and gives it back\n"
    "while stopped (Ctrl-Z) until fg; otherwise, or with -b, it writes one plain\n"
    "frame after another.\n"
    "\n"
    "Options:\n"
    "  -d, --delay=DURATION   time between refreshes (default 1s): a duration\n"
    "                         such as 500ms, 2s or 1.5s (a plain number is\n"
    "                         milliseconds)\n"
    "  -n, --iterations=COUNT stop after COUNT frames (default: until q)\n"
    "  -b, --batch            plain frames, even on a terminal\n"
    BACKEND_HELP
    "  -h, --help             show this help and exit\n"
    "\n"
    "Exit status: 0 on success, 1 on failure, 2 on a usage error.\n";

/* The most seconds of waiters history a row shows. */
#define SPARK_SECONDS 60

struct row {
    char *name;    /* finalized */
    char *display; /* as shown: escaped, without "Global\" */
    size_t display_cols;
    bool present;  /* listed by the latest refresh */
    bool readable; /* opened: else every column is "-" */
    struct sem_stats s;
    double p50_ns, p99_ns;
    /* Rates: the counters at the previous refresh, and when it was. */
    bool has_prev;
    uint64_t prev_acquisitions, prev_timeouts;
    int64_t prev_created_ms;
    double prev_time;
    double acq_rate, timeout_rate; /* -1: not known (yet) */
};

struct top {
    struct row *rows;
    size_t n, cap;
    int64_t delay_ms;
    long iterations; /* 0: until q */
    bool batch;
    time_t refreshed;
    char error[512]; /* whsem_last_error() of a failed refresh */
};

static double monotonic_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the terminal ---- */

static struct termios saved_termios;
static bool termios_saved, screen_taken;
static volatile sig_atomic_t got_signal, got_winch, got_tstp;

static void write_all(const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(STDOUT_FILENO, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;
        p += w;
        n -= (size_t)w;
    }
}

/* Leaves the screen as it was: called on q, on signals, on errors and at
 * exit, any number of times. */
static void restore_terminal(void)
{
    if (screen_taken) {
        static const char leave[] = "\033[0m\033[?25h\033[?1049l";
        write_all(leave, sizeof leave - 1);
        screen_taken = false;
    }
    if (termios_saved) {
        tcsetattr(STDIN_FILENO, TCSADRAIN, &saved_termios);
        termios_saved = false;
    }
}

static void take_terminal(void)
{
    static bool registered;
    if (!registered) registered = atexit(restore_terminal) == 0;
    if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved_termios) == 0) {
        struct termios t = saved_termios;
        /* Keys one at a time and unechoed; ISIG stays, so Ctrl-C is SIGINT. */
        t.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
        t.c_cc[VMIN] = 0;
        t.c_cc[VTIME] = 0;
        termios_saved = tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0;
    }
    static const char enter[] = "\033[?1049h\033[?25l\033[H\033[2J";
    write_all(enter, sizeof enter - 1);
    screen_taken = true;
}

static void on_signal(int sig)
{
    if (sig == SIGWINCH) got_winch = 1;
    else if (sig == SIGTSTP) got_tstp = 1;
    else got_signal = sig;
}

static const int quit_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
/* Caught too: the quit signals, and these two. */
static const int other_signals[] = {SIGWINCH, SIGTSTP};

/* The signals are blocked except while waiting (ppoll), so that one that
 * comes during a refresh is seen at the next wait instead of lost. */
static void catch_signals(sigset_t *waiting_mask)
{
    sigset_t block;
    sigemptyset(&block);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (size_t k = 0; k < sizeof quit_signals / sizeof quit_signals[0]; k++) {
        sigaction(quit_signals[k], &sa, NULL);
        sigaddset(&block, quit_signals[k]);
    }
    for (size_t k = 0; k < sizeof other_signals / sizeof other_signals[0]; k++) {
        sigaction(other_signals[k], &sa, NULL);
        sigaddset(&block, other_signals[k]);
    }
    sigprocmask(SIG_BLOCK, &block, waiting_mask);
    for (size_t k = 0; k < sizeof quit_signals / sizeof quit_signals[0]; k++)
        sigdelset(waiting_mask, quit_signals[k]);
    for (size_t k = 0; k < sizeof other_signals / sizeof other_signals[0]; k++)
        sigdelset(waiting_mask, other_signals[k]);
}

/* Ends as the signal would have ended it, the screen restored first. */
static void die_of(int sig)
{
    restore_terminal();
    fflush(stdout);
    signal(sig, SIG_DFL);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, sig);
    raise(sig);
    sigprocmask(SIG_UNBLOCK, &s, NULL);
    _exit(128 + sig);
}

static void screen_size(int *rows, int *cols)
{
    struct winsize ws;
    *rows = 24;
    *cols = 80;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col) {
        *rows = ws.ws_row;
        *cols = ws.ws_col;
    }
}

/* ---- the data ---- */

static size_t display_columns(const char *s)
{
    size_t n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

static void free_row(struct row *r)
{
    free(r->name);
    free(r->display);
    free_sem_stats(&r->s);
}

static struct row *find_or_add(struct top *t, const char *name)
{
    for (size_t k = 0; k < t->n; k++)
        if (strcmp(t->rows[k].name, name) == 0) return &t->rows[k];
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        struct row *rows = realloc(t->rows, cap * sizeof *rows);
        if (!rows) return NULL;
        t->rows = rows;
        t->cap = cap;
    }
    struct row *r = &t->rows[t->n];
    memset(r, 0, sizeof *r);
    r->name = strdup(name);
    char *disp = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&disp, &len);
    if (f) {
        const char *shown = strncmp(name, "Global\\", 7) == 0 ? name + 7 : name;
        put_display(f, shown);
        fclose(f);
    }
    r->display = disp;
    if (!r->name || !r->display) {
        free_row(r);
        return NULL;
    }
    r->display_cols = display_columns(disp);
    t->n++;
    return r;
}

static void sample(struct row *r, double now)
{
    r->acq_rate = r->timeout_rate = -1;
    r->p50_ns = r->p99_ns = -1;
    if (!r->readable || !r->s.snap.counters) {
        r->has_prev = false;
        return;
    }
    const whsem_info *i = &r->s.snap.info;
    /* A name removed and created again starts its counters over. */
    if (r->has_prev && r->prev_created_ms == i->created_unix_ms &&
        i->acquisitions >= r->prev_acquisitions && i->timeouts >= r->prev_timeouts &&
        now > r->prev_time) {
        r->acq_rate = (double)(i->acquisitions - r->prev_acquisitions) / (now - r->prev_time);
        r->timeout_rate = (double)(i->timeouts - r->prev_timeouts) / (now - r->prev_time);
    }
    r->has_prev = true;
    r->prev_acquisitions = i->acquisitions;
    r->prev_timeouts = i->timeouts;
    r->prev_created_ms = i->created_unix_ms;
    r->prev_time = now;
    r->p50_ns = wait_quantile_ns(r->s.snap.buckets, 0.50);
    r->p99_ns = wait_quantile_ns(r->s.snap.buckets, 0.99);
}

/* Reads every name again: new ones get a row, vanished ones lose theirs. */
/* Whether the user asked for something while a refresh runs (a quit
 * signal or Ctrl-Z pending, a key typed): on a slow backend a refresh of
 * many names takes seconds, and q must not wait for it. Nothing is taken:
 * wait_next sees it. */
static bool asked(const struct top *t)
{
    sigset_t pending;
    if (sigpending(&pending) == 0) {
        for (size_t k = 0; k < sizeof quit_signals / sizeof quit_signals[0]; k++)
            if (sigismember(&pending, quit_signals[k])) return true;
        if (sigismember(&pending, SIGTSTP)) return true;
    }
    struct pollfd pfd = {STDIN_FILENO, POLLIN, 0};
    return !t->batch && termios_saved && poll(&pfd, 1, 0) > 0;
}

/* Reads every name again; *stopped if the user asked for something
 * first, the rows then as they were. */
static whsem_status refresh(struct top *t, bool *stopped)
{
    *stopped = false;
    char *buf, **names;
    size_t n;
    whsem_status st = sorted_names(&buf, &names, &n, t->error, sizeof t->error);
    if (st != WHSEM_OK) return st;
    for (size_t k = 0; k < t->n; k++) t->rows[k].present = false;
    double now = monotonic_seconds();
    whsem_open_options opts;
    open_options(&opts, WHSEM_OPEN_EXACT_NAME);
    for (size_t k = 0; k < n; k++) {
        if (asked(t)) {
            for (size_t j = 0; j < t->n; j++) t->rows[j].present = true;
            *stopped = true;
            break;
        }
        const char *p = names[k];
        whsem_sem sem;
        st = whsem_open_existing(p, &opts, &sem);
        if (st == WHSEM_E_NOT_FOUND) continue; /* removed since the listing */
        struct row *r = find_or_add(t, p);
        if (!r) {
            if (st == WHSEM_OK) whsem_close(sem);
            snprintf(t->error, sizeof t->error, "out of memory");
            free(names);
            free(buf);
            return WHSEM_E_NO_MEMORY;
        }
        r->present = true;
        free_sem_stats(&r->s);
        r->readable = st == WHSEM_OK;
        /* Another user's name, one being created or replaced right now,
         * one a foreign writer garbled: shown, with nothing known about
         * it, rather than ending the view of every other name. (A backend
         * that cannot be reached fails the next listing instead.) */
        if (r->readable) {
            r->readable = read_sem_stats(sem, SPARK_SECONDS, &r->s) == WHSEM_OK;
            whsem_close(sem);
        }
        sample(r, now);
    }
    free(names);
    free(buf);
    if (*stopped) return WHSEM_OK;
    size_t kept = 0;
    for (size_t k = 0; k < t->n; k++) {
        if (t->rows[k].present) t->rows[kept++] = t->rows[k];
        else free_row(&t->rows[k]);
    }
    t->n = kept;
    t->refreshed = time(NULL);
    return WHSEM_OK;
}

static int by_waiters_then_name(const void *a, const void *b)
{
    const struct row *x = a, *y = b;
    uint32_t wx = x->readable ? x->s.snap.info.waiters : 0, wy = y->readable ? y->s.snap.info.waiters : 0;
    if (wx != wy) return wx > wy ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* ---- the frame ---- */

/* Widths of the columns after the name, each with the blank before it. */
enum { W_MAX = 7, W_FREE = 7, W_HOLD = 6, W_WAIT = 6, W_ACQ = 9, W_TMO = 8, W_PCT = 9, W_PEAK = 6 };
#define FIXED_COLS (W_MAX + W_FREE + W_HOLD + W_WAIT + W_ACQ + W_TMO + 2 * W_PCT + W_PEAK)

struct layout {
    size_t name_w, spark_w;
};

static struct layout lay_out(const struct top *t, int cols)
{
    size_t longest = 4;
    for (size_t k = 0; k < t->n; k++)
        if (t->rows[k].display_cols > longest) longest = t->rows[k].display_cols;
    struct layout l = {longest, SPARK_SECONDS};
    if (cols <= 0) return l; /* batch: as wide as it takes */
    /* The name first, up to 40 columns; then the sparkline, if 10 columns
     * are left for it; the name takes what the sparkline cannot use. What
     * still does not fit is cut at the screen's edge. */
    size_t avail = (size_t)cols > FIXED_COLS ? (size_t)cols - FIXED_COLS : 0;
    size_t name_w = longest < 40 ? longest : 40;
    l.spark_w = avail >= name_w + 11 ? avail - name_w - 1 : 0;
    if (l.spark_w > SPARK_SECONDS) l.spark_w = SPARK_SECONDS;
    size_t room = l.spark_w ? avail - l.spark_w - 1 : avail;
    l.name_w = longest < room ? longest : room;
    if (l.name_w < 8) l.name_w = longest < 8 ? longest : 8;
    return l;
}

/* The name cut to w columns (its end replaced by "~"), padded. */
static void put_name(FILE *f, const struct row *r, size_t w)
{
    const char *s = r->display;
    if (r->display_cols <= w) {
        fputs(s, f);
        for (size_t k = r->display_cols; k < w; k++) fputc(' ', f);
        return;
    }
    size_t shown = 0;
    for (; *s && shown < w - 1; shown++) {
        const char *e = s + 1;
        while ((*e & 0xc0) == 0x80) e++;
        fwrite(s, 1, (size_t)(e - s), f);
        s = e;
    }
    fputc('~', f);
}

static void put_cell(FILE *f, int width, bool known, const char *text)
{
    fprintf(f, "%*s", width, known ? text : "-");
}

static void put_row(FILE *f, const struct row *r, const struct layout *l)
{
    char b[32];
    bool ok = r->readable, c = ok && r->s.snap.counters;
    const whsem_info *i = &r->s.snap.info;
    put_name(f, r, l->name_w);
    snprintf(b, sizeof b, "%d", (int)i->max_count);
    put_cell(f, W_MAX, ok, b);
    snprintf(b, sizeof b, "%d", (int)i->free_count);
    put_cell(f, W_FREE, ok, b);
    snprintf(b, sizeof b, "%u", (unsigned)i->holders);
    put_cell(f, W_HOLD, ok, b);
    snprintf(b, sizeof b, "%u", (unsigned)i->waiters);
    put_cell(f, W_WAIT, ok, b);
    /* Before the second refresh there is no rate yet: blank, not "-". */
    format_rate(r->acq_rate, b, sizeof b);
    fprintf(f, "%*s", W_ACQ, !c ? "-" : r->acq_rate < 0 ? "" : b);
    format_rate(r->timeout_rate, b, sizeof b);
    fprintf(f, "%*s", W_TMO, !c ? "-" : r->timeout_rate < 0 ? "" : b);
    format_duration_ns(r->p50_ns, b, sizeof b);
    fprintf(f, "%*s", W_PCT, c ? b : "-");
    format_duration_ns(r->p99_ns, b, sizeof b);
    fprintf(f, "%*s", W_PCT, c ? b : "-");
    bool h = ok && r->s.has_history;
    uint32_t peak = 0;
    for (size_t k = 0; h && k < r->s.seconds; k++)
        if (r->s.history[k] > peak) peak = r->s.history[k];
    snprintf(b, sizeof b, "%u", (unsigned)peak);
    put_cell(f, W_PEAK, h, b);
    if (l->spark_w) {
        fputc(' ', f);
        if (h) put_sparkline(f, r->s.history, r->s.seconds, l->spark_w);
        else fputc('-', f);
    }
}

/* A frame being written: for the screen (rows, cols > 0), every line
 * placed, cut at the edge and cleared to its end, or plain. */
struct frame {
    FILE *f;
    int rows, cols, line;
};

static void put_line(struct frame *fr, const char *text, bool inverse)
{
    int line = fr->line++;
    if (!fr->rows) {
        fprintf(fr->f, "%s\n", text);
        return;
    }
    if (line > fr->rows) return;
    fprintf(fr->f, "\033[%d;1H%s", line, inverse ? "\033[7m" : "");
    int used = 0;
    for (const char *p = text; *p; p++) {
        if (((unsigned char)*p & 0xc0) != 0x80 && used++ == fr->cols) break;
        fputc(*p, fr->f);
    }
    if (inverse) {
        for (; used < fr->cols; used++) fputc(' ', fr->f);
        fputs("\033[0m", fr->f);
    } else {
        fputs("\033[K", fr->f);
    }
}

/* Runs put(ctx) into a string and puts that as a line. */
static void put_line_of(struct frame *fr, void (*put)(FILE *, const void *, const struct layout *),
                        const void *ctx, const struct layout *l, bool inverse)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return;
    put(f, ctx, l);
    fclose(f);
    put_line(fr, text, inverse);
    free(text);
}

static void put_heading(FILE *f, const void *ctx, const struct layout *l)
{
    (void)ctx;
    fprintf(f, "%-*s%*s%*s%*s%*s%*s%*s%*s%*s%*s", (int)l->name_w, "NAME", W_MAX, "MAX", W_FREE,
            "FREE", W_HOLD, "HOLD", W_WAIT, "WAIT", W_ACQ, "ACQ/s", W_TMO, "TMO/s", W_PCT, "P50",
            W_PCT, "P99", W_PEAK, "PEAK");
    if (l->spark_w) fprintf(f, " %.*s", (int)l->spark_w, "WAITERS, LAST MINUTE");
}

static void put_row_line(FILE *f, const void *row, const struct layout *l)
{
    put_row(f, row, l);
}

/* One frame into *out (malloc'd): for the screen (rows, cols > 0) with
 * escapes, or plain (rows = cols = 0) with every name. */
static size_t compose(struct top *t, int rows, int cols, char **out)
{
    size_t len = 0;
    *out = NULL;
    struct frame fr = {open_memstream(out, &len), rows, cols, 1};
    if (!fr.f) return 0;
    struct layout l = lay_out(t, cols);
    char when[16];
    struct tm tm;
    strftime(when, sizeof when, "%H:%M:%S", localtime_r(&t->refreshed, &tm));
    char head[256];
    snprintf(head, sizeof head, "whsem top - %s - %zu name%s - %s - every %.3gs%s", when, t->n,
             t->n == 1 ? "" : "s", backend() ? "PostgreSQL" : "this machine",
             (double)t->delay_ms / 1000.0, rows ? " - q quits" : "");
    put_line(&fr, head, false);
    put_line(&fr, "", false);
    put_line_of(&fr, put_heading, NULL, &l, rows > 0);
    for (size_t k = 0; k < t->n; k++) {
        if (rows && fr.line == rows && k + 1 < t->n) {
            char more[64];
            snprintf(more, sizeof more, "(%zu more)", t->n - k);
            put_line(&fr, more, false);
            break;
        }
        put_line_of(&fr, put_row_line, &t->rows[k], &l, false);
    }
    if (rows) fputs("\033[J", fr.f);
    else fputc('\n', fr.f);
    fclose(fr.f);
    return len;
}

static void draw(struct top *t)
{
    char *frame;
    size_t len;
    if (t->batch) {
        len = compose(t, 0, 0, &frame);
        fwrite(frame, 1, len, stdout);
        fflush(stdout);
    } else {
        int rows, cols;
        screen_size(&rows, &cols);
        len = compose(t, rows, cols, &frame);
        write_all(frame, len);
    }
    free(frame);
}

/* Ctrl-Z: stops with the terminal as it was, and takes the screen again
 * when continued. */
static void suspend(struct top *t)
{
    bool had_screen = screen_taken;
    restore_terminal();
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGTSTP);
    signal(SIGTSTP, SIG_DFL);
    raise(SIGTSTP);
    sigprocmask(SIG_UNBLOCK, &s, NULL); /* stops here until SIGCONT */
    sigprocmask(SIG_BLOCK, &s, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTSTP, &sa, NULL);
    if (had_screen) {
        take_terminal();
        draw(t);
    }
}

/* Waits until the next refresh is due, redrawing on a resize. Returns
 * false when the user quits. */
static bool wait_next(struct top *t, double due, const sigset_t *mask)
{
    for (;;) {
        if (got_signal) die_of(got_signal);
        if (got_tstp) {
            got_tstp = 0;
            suspend(t);
        }
        if (got_winch) {
            got_winch = 0;
            if (!t->batch) draw(t);
        }
        /* Due already: one look all the same, for what came meanwhile. */
        double left = due - monotonic_seconds();
        bool last = left <= 0;
        if (last) left = 0;
        struct timespec ts = {(time_t)left, (long)((left - (double)(time_t)left) * 1e9)};
        struct pollfd pfd = {STDIN_FILENO, POLLIN, 0};
        bool keys = !t->batch && termios_saved;
        int r = ppoll(&pfd, keys ? 1 : 0, &ts, mask);
        if (r > 0 && (pfd.revents & POLLIN)) {
            char c[64];
            ssize_t n = read(STDIN_FILENO, c, sizeof c);
            for (ssize_t k = 0; k < n; k++)
                if (c[k] == 'q' || c[k] == 'Q') return false;
            /* Any other key refreshes now. */
            if (n > 0) return true;
        }
        if (r > 0 && (pfd.revents & (POLLHUP | POLLERR | POLLNVAL))) {
            /* The terminal went away: nobody is left to press q. */
            return false;
        }
        if (last && r == 0) return true;
    }
}

static int top_main(int argc, char **argv)
{
    static const struct optdef defs[] = {
        {"help", 'h', false, OPT_HELP},
        {"delay", 'd', true, OPT_DELAY},
        {"iterations", 'n', true, OPT_ITERATIONS},
        {"batch", 'b', false, OPT_BATCH},
        BACKEND_OPTDEF,
        {NULL, 0, false, 0},
    };
    struct top t;
    memset(&t, 0, sizeof t);
    t.delay_ms = 1000;
    for (int i = 1; i < argc;) {
        const char *arg, *why;
        int id = next_arg(argv, argc, &i, defs, &arg);
        long v;
        switch (id) {
        case OPT_HELP:
            show_help(current_cmd);
            return 0;
        case OPT_BACKEND:
            set_backend(arg);
            break;
        case OPT_DELAY:
            if (!parse_duration_ms(arg, INT32_MAX, &t.delay_ms, &why) ||
                (t.delay_ms == 0 && (why = "it must be at least 1ms")))
                usage_error("invalid delay '%s': %s; use a duration " DURATION_FORMS
                            " up to %dms",
                            arg, why, INT32_MAX);
            break;
        case OPT_ITERATIONS:
            if (!parse_int(arg, 1, INT32_MAX, &v))
                usage_error("invalid count '%s': use 1 ... %d", arg, INT32_MAX);
            t.iterations = v;
            break;
        case OPT_BATCH:
            t.batch = true;
            break;
        case -1:
            usage_error("unexpected argument '--'");
        default:
            usage_error("unexpected argument '%s'", arg);
        }
    }
    setlocale(LC_CTYPE, "");
    if (!isatty(STDOUT_FILENO)) t.batch = true;

    sigset_t waiting_mask;
    catch_signals(&waiting_mask);
    if (!t.batch) take_terminal();
    int rc = 0;
    for (long frame = 1;; frame++) {
        double started = monotonic_seconds();
        bool stopped;
        whsem_status st = refresh(&t, &stopped);
        if (st != WHSEM_OK) {
            restore_terminal();
            fprintf(stderr, "whsem: %s: %s\n", whsem_status_name(st), t.error);
            rc = 1;
            break;
        }
        if (stopped) {
            /* The user's request first; the frame is drawn after it. */
            if (!wait_next(&t, 0, &waiting_mask)) break;
            frame--;
            continue;
        }
        qsort(t.rows, t.n, sizeof *t.rows, by_waiters_then_name);
        draw(&t);
        if (t.batch && ferror(stdout)) break; /* main reports it */
        if (t.iterations && frame >= t.iterations) break;
        if (!wait_next(&t, started + (double)t.delay_ms / 1000.0, &waiting_mask)) break;
    }
    restore_terminal();
    for (size_t k = 0; k < t.n; k++) free_row(&t.rows[k]);
    free(t.rows);
    return rc;
}

const struct command cmd_top = {"top", usage_top, help_top, top_main};
