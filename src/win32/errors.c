/* SPDX-License-Identifier: MIT */
/*
 * The per-thread detail message and the small Win32 helpers everything
 * else leans on (clocks, per-thread events). (Versions and status names:
 * ../status.c.)
 */
#include "fork_hooks.h"
#include "win32.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Per-thread state lives in a fiber-local slot rather than in compiler
 * TLS: FlsAlloc's callback frees it when the thread exits, and it works
 * the same in whsem.dll loaded at run time (LoadLibrary) and in a static
 * build.
 */
struct tstate {
    char err[512];
    HANDLE event; /* auto-reset; the thread's blocking waits sleep on it */
};

static INIT_ONCE fls_once = INIT_ONCE_STATIC_INIT;
static DWORD fls_index = FLS_OUT_OF_INDEXES;

static void WINAPI tstate_free(void *p)
{
    struct tstate *t = p;
    if (!t) return;
    if (t->event) CloseHandle(t->event);
    free(t);
}

static BOOL CALLBACK fls_init(PINIT_ONCE once, void *param, void **ctx)
{
    (void)once, (void)param, (void)ctx;
    fls_index = FlsAlloc(tstate_free);
    return TRUE;
}

void whsem__w_tstate_unload(void)
{
    if (fls_index != FLS_OUT_OF_INDEXES) FlsFree(fls_index);
    fls_index = FLS_OUT_OF_INDEXES;
}

static struct tstate *tstate(bool create)
{
    InitOnceExecuteOnce(&fls_once, fls_init, NULL, NULL);
    if (fls_index == FLS_OUT_OF_INDEXES) return NULL;
    struct tstate *t = FlsGetValue(fls_index);
    if (!t && create) {
        t = calloc(1, sizeof *t);
        if (t && !FlsSetValue(fls_index, t)) {
            free(t);
            t = NULL;
        }
    }
    return t;
}

HANDLE whsem__w_thread_event(void)
{
    struct tstate *t = tstate(true);
    if (!t) return NULL;
    if (!t->event) t->event = CreateEventW(NULL, FALSE, FALSE, NULL);
    return t->event;
}

WHSEM_API const char *WHSEM_CALL whsem_last_error(void)
{
    struct tstate *t = tstate(false);
    return t ? t->err : "";
}

whsem_status whsem__fail(whsem_status status, const char *fmt, ...)
{
    struct tstate *t = tstate(true);
    if (!t) return status; /* no memory for the message: the status still tells */
    va_list ap;
    va_start(ap, fmt);
    __mingw_vsnprintf(t->err, sizeof t->err, fmt, ap);
    va_end(ap);
    return status;
}

whsem_status whsem__fail_win32(DWORD err, const char *what, const wchar_t *obj)
{
    char text[256] = "";
    DWORD n = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL, err,
                             MAKELANGID(LANG_ENGLISH, SUBLANG_DEFAULT), text, sizeof text, NULL);
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == '.')) text[--n] = 0;
    const wchar_t *o = obj ? obj : L"";
    switch (err) {
    case ERROR_ACCESS_DENIED:
    case ERROR_PRIVILEGE_NOT_HELD:
        return whsem__fail(WHSEM_E_ACCESS_DENIED,
                           "%s %ls: access denied (error %lu). Creating objects in Global\\ "
                           "needs SeCreateGlobalPrivilege (services and elevated "
                           "administrators have it); opening one that exists needs access "
                           "granted by its creator",
                           what, o, (unsigned long)err);
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_OUTOFMEMORY:
    case ERROR_COMMITMENT_LIMIT:
        return whsem__fail(WHSEM_E_NO_MEMORY, "%s %ls: %s (error %lu)", what, o, text,
                           (unsigned long)err);
    case ERROR_NO_SYSTEM_RESOURCES:
    case ERROR_TOO_MANY_OPEN_FILES:
        return whsem__fail(WHSEM_E_LIMIT, "%s %ls: %s (error %lu)", what, o, text,
                           (unsigned long)err);
    default:
        return whsem__fail(WHSEM_E_OS, "%s %ls: %s (error %lu)", what, o, text,
                           (unsigned long)err);
    }
}

uint64_t whsem__w_mono_ns(void)
{
    static LARGE_INTEGER freq; /* written once, identically, by whoever comes first */
    if (!freq.QuadPart) QueryPerformanceFrequency(&freq);
    LARGE_INTEGER c;
    QueryPerformanceCounter(&c);
    uint64_t t = (uint64_t)c.QuadPart, f = (uint64_t)freq.QuadPart;
    return t / f * 1000000000u + t % f * 1000000000u / f;
}

int64_t whsem__w_unix_ms(void)
{
    FILETIME ft;
    GetSystemTimePreciseAsFileTime(&ft);
    uint64_t t = (uint64_t)ft.dwHighDateTime << 32 | ft.dwLowDateTime;
    return (int64_t)((t - 116444736000000000ull) / 10000u); /* 1601 -> 1970, 100 ns -> ms */
}

DWORD whsem__w_wait_ms(uint64_t until_ns, uint64_t now_ns)
{
    if (!until_ns) return INFINITE;
    if (until_ns <= now_ns) return 0;
    uint64_t ms = (until_ns - now_ns + 999999u) / 1000000u;
    return ms >= INFINITE ? INFINITE - 1 : (DWORD)ms;
}

void whsem__w_pin_module(void)
{
    static volatile LONG pinned;
    if (pinned || InterlockedExchange(&pinned, 1)) return;
    HMODULE self;
    GetModuleHandleExW(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS | GET_MODULE_HANDLE_EX_FLAG_PIN,
                       (LPCWSTR)(void *)whsem__w_pin_module, &self);
}

#ifdef WHSEM_FAULT_INJECTION
void whsem__w_fault_point(const char *name)
{
    char want[64];
    DWORD n = GetEnvironmentVariableA("WHSEM_FAULT_POINT", want, sizeof want);
    if (n > 0 && n < sizeof want && strcmp(want, name) == 0)
        TerminateProcess(GetCurrentProcess(), 137); /* die exactly here, like a kill */
}
#endif

/* Windows processes do not fork: the modules' fork hooks are never needed. */
void whsem__on_fork(const struct whsem_fork_hooks *hooks) { (void)hooks; }
