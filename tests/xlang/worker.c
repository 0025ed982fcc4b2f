/* SPDX-License-Identifier: MIT */
/*
 * The C worker of the cross-language test. Same command line as the Go,
 * Rust and C# workers:
 *
 *   worker name NAME
 *   worker run --name NAME --max N --duration-ms MS --log PATH [--async] [--hold-us US]
 *              [--backend CONNINFO]
 *
 * `run` acquires and releases tickets until MS have passed, appending
 * "acq <pid> c <ns>" once it holds a ticket and "rel <pid> c <ns>" just
 * before it gives it back (CLOCK_MONOTONIC; one write() per line on an
 * O_APPEND file, so lines of many processes never interleave). With
 * --async it waits the event-loop way: a completion queue's descriptor in
 * poll().
 *
 * With --backend the name lives on that PostgreSQL database, where a
 * ticket can be lost while its holder lives (its session ended): the
 * worker watches each ticket it holds, and a loss during the hold ends it
 * with "lost <pid> c <ns>" instead of "rel". Acquisitions that end with
 * WHSEM_E_UNAVAILABLE or WHSEM_E_TICKET_LOST (a session ended under a
 * wait, the server restarting) are tried again.
 */
#include "whsem.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void fail(const char *what, whsem_status st)
{
    fprintf(stderr, "worker(c): %s: %s: %s\n", what, whsem_status_name(st), whsem_last_error());
    exit(1);
}

static void log_line(int fd, const char *event)
{
    char line[96];
    int n = snprintf(line, sizeof line, "%s %d c %lld\n", event, (int)getpid(), (long long)now_ns());
    if (write(fd, line, (size_t)n) != n) {
        perror("worker(c): log");
        exit(1);
    }
}

/* One ticket through the completion queue, waiting in poll(). */
static whsem_status acquire_async(whsem_sem sem, whsem_queue q, int qfd, whsem_ticket *out)
{
    whsem_op op;
    whsem_status st = whsem_acquire_queued(sem, 5000, 0, q, 1, &op);
    if (st != WHSEM_OK) return st;
    while ((st = whsem_op_poll(op)) == WHSEM_PENDING) {
        struct pollfd p = {.fd = qfd, .events = POLLIN};
        poll(&p, 1, 1000);
        whsem_op done;
        uint64_t tag;
        while (whsem_queue_pop(q, &done, &tag) == WHSEM_OK) {
        }
    }
    if (st == WHSEM_OK) st = whsem_op_take_ticket(op, out);
    whsem_op_free(op);
    return st;
}

/* A watch's one call, as a byte on a pipe: 'L' lost, 'R' released. */
static int watch_pipe[2] = {-1, -1};

static void on_ticket_end(whsem_ticket ticket, whsem_status st, void *user_data)
{
    (void)ticket, (void)user_data;
    char b = st == WHSEM_E_TICKET_LOST ? 'L' : 'R';
    if (write(watch_pipe[1], &b, 1) != 1) abort();
}

/* Holds t for hold_us, or until it is lost: 'L' if lost, else 0. */
static char hold_watched(whsem_ticket t, long hold_us)
{
    whsem_status st = whsem_ticket_watch(t, 0, on_ticket_end, NULL);
    if (st != WHSEM_OK) fail("watch", st);
    int64_t until = now_ns() + (int64_t)hold_us * 1000;
    for (;;) {
        int64_t left = until - now_ns();
        if (left <= 0) return 0;
        struct pollfd p = {.fd = watch_pipe[0], .events = POLLIN};
        if (poll(&p, 1, (int)((left + 999999) / 1000000)) > 0) {
            char b;
            if (read(watch_pipe[0], &b, 1) == 1) return b;
        }
    }
}

/* After a watched ticket's release: its watch's one call, so that the
 * next ticket's starts from an empty pipe. */
static void watch_done(void)
{
    char b;
    while (read(watch_pipe[0], &b, 1) < 0 && errno == EINTR) {
    }
}

static int retried(whsem_status st) { return st == WHSEM_E_UNAVAILABLE || st == WHSEM_E_TICKET_LOST; }

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "name") == 0) {
        char buf[1024];
        size_t len;
        whsem_status st = whsem_safe_name(argv[2], buf, sizeof buf, &len);
        if (st != WHSEM_OK) fail("safe_name", st);
        printf("%s\n", buf);
        return 0;
    }
    if (argc < 2 || strcmp(argv[1], "run") != 0) {
        fprintf(stderr, "usage: worker name NAME | worker run --name NAME --max N --duration-ms MS "
                        "--log PATH [--async] [--hold-us US] [--backend CONNINFO]\n");
        return 2;
    }
    const char *name = NULL, *log = NULL, *backend = NULL;
    long max = 0, duration_ms = 0, hold_us = 200;
    int use_async = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--async") == 0) use_async = 1;
        else if (i + 1 < argc && strcmp(argv[i], "--name") == 0) name = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--log") == 0) log = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--max") == 0) max = atol(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--duration-ms") == 0) duration_ms = atol(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--hold-us") == 0) hold_us = atol(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--backend") == 0) backend = argv[++i];
        else {
            fprintf(stderr, "worker(c): unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    if (!name || !log || max < 1 || duration_ms < 0) {
        fprintf(stderr, "worker(c): --name, --max, --duration-ms and --log are required\n");
        return 2;
    }
    int fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        perror("worker(c): open log");
        return 1;
    }
    whsem_open_options o = {.struct_size = sizeof o, .backend = backend};
    if (backend && pipe(watch_pipe) != 0) {
        perror("worker(c): pipe");
        return 1;
    }
    int64_t end = now_ns() + (int64_t)duration_ms * 1000000;
    whsem_sem sem;
    whsem_status st;
    while ((st = whsem_open(name, (int32_t)max, &o, &sem)) != WHSEM_OK) {
        if (!retried(st) || now_ns() >= end) fail("open", st);
        usleep(10000);
    }
    whsem_queue q = 0;
    int32_t qfd = -1;
    if (use_async && ((st = whsem_queue_new(&q)) != WHSEM_OK || (st = whsem_queue_fd(q, &qfd)) != WHSEM_OK))
        fail("queue", st);
    while (now_ns() < end) {
        whsem_ticket t;
        st = use_async ? acquire_async(sem, q, qfd, &t) : whsem_acquire(sem, 5000, 0, &t);
        if (st == WHSEM_TIMEOUT) continue;
        if (backend && retried(st)) {
            usleep(10000);
            continue;
        }
        if (st != WHSEM_OK) fail("acquire", st);
        log_line(fd, "acq");
        if (!backend) {
            struct timespec hold = {hold_us / 1000000, hold_us % 1000000 * 1000};
            nanosleep(&hold, NULL);
            log_line(fd, "rel");
            if ((st = whsem_release(t)) != WHSEM_OK) fail("release", st);
            continue;
        }
        if (hold_watched(t, hold_us) == 'L') {
            log_line(fd, "lost");
            if ((st = whsem_release(t)) != WHSEM_E_TICKET_LOST) fail("release of a lost ticket", st);
            continue;
        }
        log_line(fd, "rel");
        /* A loss after the hold is told by the release alone: the log
         * ended the hold already. */
        st = whsem_release(t);
        if (st != WHSEM_OK && st != WHSEM_E_TICKET_LOST) fail("release", st);
        watch_done();
    }
    if (q) whsem_queue_free(q);
    whsem_close(sem);
    close(fd);
    return 0;
}
