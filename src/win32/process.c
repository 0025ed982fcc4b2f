/* SPDX-License-Identifier: MIT */
/*
 * Processes on Windows: who we are, whether the process a slot names
 * still runs, freeing a dead process's slot and waking a slot's waiters:
 * the primitives the shared accounting (../accounting.c) asks of Windows,
 * below the segment code that uses that accounting.
 */
#include "platform.h"
#include "../platform.h" /* the primitives declared once for every platform */

#include <stdio.h>
#include <wchar.h>

/* ---- who we are --------------------------------------------------------------- */

static INIT_ONCE self_once = INIT_ONCE_STATIC_INIT;
static struct whsem_w_self self;

static uint64_t ft64(FILETIME f) { return (uint64_t)f.dwHighDateTime << 32 | f.dwLowDateTime; }

static BOOL CALLBACK self_init(PINIT_ONCE once, void *param, void **ctx)
{
    (void)once, (void)param, (void)ctx;
    FILETIME c, e, k, u;
    self.pid = GetCurrentProcessId();
    if (GetProcessTimes(GetCurrentProcess(), &c, &e, &k, &u)) self.created = ft64(c);
    return TRUE;
}

struct whsem_w_self whsem__w_self(void)
{
    InitOnceExecuteOnce(&self_once, self_init, NULL, NULL);
    return self;
}

/*
 * Whether the process a slot names still runs. A pid alone could have been
 * reused; the creation time cannot repeat for the same pid. A process that
 * has exited but whose object lingers (someone holds a handle) is dead.
 * Doubt (access denied to a live process) resolves to "alive": a wrong
 * "alive" only delays tickets, a wrong "dead" would over-admit.
 */
bool whsem__w_process_alive(uint32_t pid, uint64_t created)
{
    struct whsem_w_self me = whsem__w_self();
    if (pid == me.pid) return created == me.created;
    bool sync = true;
    HANDLE h = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION | SYNCHRONIZE, FALSE, pid);
    if (!h && GetLastError() == ERROR_ACCESS_DENIED) {
        sync = false;
        h = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid);
    }
    if (!h) return GetLastError() != ERROR_INVALID_PARAMETER; /* that error: no such pid */
    bool alive = true;
    FILETIME c, e, k, u;
    if (sync && WaitForSingleObject(h, 0) == WAIT_OBJECT_0) alive = false;
    else if (GetProcessTimes(h, &c, &e, &k, &u) && (ft64(c) != created || ft64(e) != 0))
        alive = false;
    CloseHandle(h);
    return alive;
}

bool whsem__slot_alive(struct wmap *m, uint32_t i, bool process_only)
{
    (void)process_only;
    if (i == m->slot) return true;
    const struct wseg_slot *s = &m->slots[i];
    return whsem__w_process_alive(s->pid, s->created);
}

void whsem__p_release_dead_locked(struct wmap *m, uint32_t i, uint32_t state)
{
    (void)state;
    m->slots[i].pid = 0;
    m->slots[i].state = WSLOT_FREE;
}

/* ---- watching a process for its end --------------------------------------------------- */

/*
 * A process handle, waited on by the thread pool (no thread of ours, no
 * limit of 64 handles per wait). The handle pins the process object, so
 * a creation time that matches the slot's names the slot's process for
 * as long as the watch lasts.
 */
static void (*pw_fired)(uint64_t cookie);

static VOID CALLBACK pw_signaled(PVOID ctx, BOOLEAN timed_out)
{
    (void)timed_out;
    pw_fired((uint64_t)(uintptr_t)ctx);
}

int whsem__p_pwatch_open(const struct whsem_pident *id, uint64_t cookie, void (*fired)(uint64_t cookie),
                         struct whsem_pwatch *w)
{
    w->process = w->wait = NULL;
    HANDLE h = OpenProcess(SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION, FALSE, id->pid);
    if (!h) return GetLastError() == ERROR_INVALID_PARAMETER ? WHSEM_PW_GONE : WHSEM_PW_CANNOT;
    FILETIME c, e, k, u;
    int verdict = WHSEM_PW_CANNOT;
    if (GetProcessTimes(h, &c, &e, &k, &u)) {
        verdict = ft64(c) != id->created || WaitForSingleObject(h, 0) == WAIT_OBJECT_0 ? WHSEM_PW_GONE
                                                                                   : WHSEM_PW_WATCHING;
    }
    if (verdict == WHSEM_PW_WATCHING) {
        whsem__w_pin_module(); /* the pool calls our code */
        pw_fired = fired;
        if (!RegisterWaitForSingleObject(&w->wait, h, pw_signaled, (PVOID)(uintptr_t)cookie, INFINITE,
                                         WT_EXECUTEONLYONCE | WT_EXECUTEINWAITTHREAD))
            verdict = WHSEM_PW_CANNOT;
    }
    if (verdict != WHSEM_PW_WATCHING) CloseHandle(h);
    else w->process = h;
    return verdict;
}

void whsem__p_pwatch_close(struct whsem_pwatch *w)
{
    /* Returns once a callback that has begun is over: none comes later. */
    if (w->wait) UnregisterWaitEx(w->wait, INVALID_HANDLE_VALUE);
    if (w->process) CloseHandle(w->process);
    w->process = w->wait = NULL;
}

/* ---- waking ------------------------------------------------------------------------- */

void whsem__wake_slot(struct wmap *m, uint32_t i, LONG count)
{
    HANDLE w = m->wake[i];
    if (!w) {
        /* Its owner created it when it attached; if it is gone, so is the
         * owner, and nobody needs waking. */
        wchar_t name[WHSEM_W_OBJ_CHARS];
        swprintf(name, WHSEM_W_OBJ_CHARS, L"%ls!w%u", m->obj, i); /* as segment.c names it */
        w = OpenSemaphoreW(SEMAPHORE_MODIFY_STATE | SYNCHRONIZE, FALSE, name);
        if (!w) return;
        HANDLE prev = InterlockedCompareExchangePointer(&m->wake[i], w, NULL);
        if (prev) {
            CloseHandle(w);
            w = prev;
        }
    }
    ReleaseSemaphore(w, count, NULL);
}

