/* SPDX-License-Identifier: MIT */
/*
 * Linux's process watches (platform.h): a pidfd per watched process in an
 * epoll set, and one thread waiting on it that reports each end.
 *
 * Why a thread of its own: the dispatcher sleeps in futex_waitv, which
 * cannot wait on a descriptor, and the shared wake words of the segments
 * cannot become descriptors. A process's end is rare and its report may
 * take one wake-up more; the dispatcher's hot path (a release waking it)
 * stays a futex.
 *
 * A pidfd names a process, not a pid, but pidfd_open takes a pid, which
 * the process a slot names may have given up (reaped, and the number
 * reused). So the pidfd is opened first, then /proc/<pid> must show the
 * slot's start time, and then the pidfd's process must still exist
 * (pidfd_send_signal with signal 0): it has held the pid all along, so
 * /proc showed it, and it is the slot's process.
 *
 * Descriptors are the application's too: an application that closes what
 * it did not open (closefrom) may close ours and reuse the numbers. So a
 * descriptor is checked (fstat: same file) before it is closed, and an
 * epoll set that goes away ends watching in this process for good: its
 * waits then rely on polling, as before.
 */
#include "../platform.h" /* the primitives declared once for every platform */

#include "fork_hooks.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

/* The watcher thread exits after this long with nothing watched. */
#define WATCHER_IDLE_MS 2000

static whsem_mutex pw_mu = WHSEM_MUTEX_INIT;
static int epfd = -1;
static struct stat ep_st;       /* what epfd was when we made it        */
static int watching;            /* pidfds in the set                   */
static bool watcher_running;
static bool disabled;           /* no pidfds here, or the set was closed */
static void (*on_end)(uint64_t cookie);

static bool same_file(int fd, const struct stat *was)
{
    struct stat st;
    return fd >= 0 && fstat(fd, &st) == 0 && st.st_dev == was->st_dev && st.st_ino == was->st_ino;
}

static WHSEM_THREAD_FN(watcher)
{
    (void)arg;
    struct epoll_event ev[16];
    for (;;) {
        int n = epoll_wait(epfd, ev, 16, WATCHER_IDLE_MS);
        if (n < 0 && errno == EINTR) continue;
        whsem__mutex_lock(&pw_mu);
        if (n < 0) disabled = true; /* the set was closed behind our back */
        if (n <= 0 && (disabled || watching == 0)) {
            watcher_running = false;
            whsem__mutex_unlock(&pw_mu);
            WHSEM_THREAD_END;
        }
        void (*report)(uint64_t) = on_end;
        whsem__mutex_unlock(&pw_mu);
        for (int i = 0; i < n; i++) report(ev[i].data.u64);
    }
}

/* The epoll set and its thread (pw_mu held). */
static bool watcher_ready(void)
{
    if (disabled) return false;
    if (epfd < 0) {
        epfd = epoll_create1(EPOLL_CLOEXEC);
        if (epfd < 0 || fstat(epfd, &ep_st) != 0) {
            if (epfd >= 0) close(epfd);
            epfd = -1;
            return false;
        }
    } else if (!same_file(epfd, &ep_st)) {
        disabled = true;
        return false;
    }
    if (!watcher_running && whsem__p_thread_start(watcher, "process watcher") == WHSEM_OK)
        watcher_running = true;
    return watcher_running;
}

/* /proc's word on the process holding pid now: whether it is the one that
 * started at start_ticks and has not ended. */
static bool proc_shows(int32_t pid, uint64_t start_ticks)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    const char *state = whsem__proc_stat_fields(path, buf, sizeof buf);
    uint64_t ticks;
    return state && *state != 'Z' && *state != 'X' && *state != 'x' &&
           whsem__proc_stat_start(state, &ticks) && ticks == start_ticks;
}

int whsem__p_pwatch_open(const struct whsem_pident *id, uint64_t cookie, void (*fired)(uint64_t),
                         struct whsem_pwatch *w)
{
    w->fd = -1;
    if (id->pid <= 0 || id->pidns != whsem__self_id.pidns || whsem__self_id.start_ticks == 0)
        return WHSEM_PW_CANNOT; /* a pid of another namespace names nobody here */
    whsem__mutex_lock(&pw_mu);
    on_end = fired;
    bool ready = watcher_ready();
    whsem__mutex_unlock(&pw_mu);
    if (!ready) return WHSEM_PW_CANNOT;
    int fd = (int)syscall(SYS_pidfd_open, (pid_t)id->pid, 0);
    if (fd < 0) {
        if (errno == ESRCH) return WHSEM_PW_GONE;
        if (errno == ENOSYS || errno == EPERM) { /* an old kernel, or a filter: poll */
            whsem__mutex_lock(&pw_mu);
            disabled = true;
            whsem__mutex_unlock(&pw_mu);
        }
        return WHSEM_PW_CANNOT;
    }
    /* The pid holds another process now (or this one in another time
     * namespace, whose start times /proc shifts): the slot's process is
     * gone, or it is in doubt, and the scan this leads to decides. */
    if (!proc_shows(id->pid, id->start_ticks) ||
        (syscall(SYS_pidfd_send_signal, fd, 0, NULL, 0) != 0 && errno == ESRCH)) {
        close(fd);
        return WHSEM_PW_GONE;
    }
    struct stat st;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.u64 = cookie};
    whsem__mutex_lock(&pw_mu);
    bool added = !disabled && fstat(fd, &st) == 0 && epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == 0;
    if (added) watching++;
    whsem__mutex_unlock(&pw_mu);
    if (!added) {
        close(fd);
        return WHSEM_PW_CANNOT;
    }
    w->fd = fd;
    w->st_dev = st.st_dev;
    w->st_ino = st.st_ino;
    return WHSEM_PW_WATCHING;
}

void whsem__p_pwatch_close(struct whsem_pwatch *w)
{
    if (w->fd < 0) return;
    struct stat was = {.st_dev = w->st_dev, .st_ino = w->st_ino};
    whsem__mutex_lock(&pw_mu);
    if (same_file(w->fd, &was)) {
        if (!disabled && same_file(epfd, &ep_st)) epoll_ctl(epfd, EPOLL_CTL_DEL, w->fd, NULL);
        close(w->fd);
    }
    watching--;
    whsem__mutex_unlock(&pw_mu);
    w->fd = -1;
}

void whsem__p_pwatch_drop(struct whsem_pwatch *w)
{
    /* In a fork() child: the epoll set is the parent's too, so only our
     * copy of the descriptor goes. */
    struct stat was = {.st_dev = w->st_dev, .st_ino = w->st_ino};
    if (same_file(w->fd, &was)) close(w->fd);
    w->fd = -1;
}

static void pw_lock(void) { whsem__mutex_lock(&pw_mu); }
static void pw_unlock(void) { whsem__mutex_unlock(&pw_mu); }

static void pw_child(void)
{
    if (epfd >= 0 && same_file(epfd, &ep_st)) close(epfd);
    epfd = -1;
    watching = 0;
    watcher_running = false;
    whsem__mutex_unlock(&pw_mu);
}

static const struct whsem_fork_hooks fork_hooks = {WHSEM_FORK_ORDER_PWATCH, pw_lock, pw_unlock, pw_child};

__attribute__((constructor)) static void register_fork_hooks(void) { whsem__on_fork(&fork_hooks); }
