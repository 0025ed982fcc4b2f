/* SPDX-License-Identifier: MIT */
/*
 * Drives the whole libwhsem ABI the way a foreign runtime without a C
 * compiler would: load the library at run time (no link-time dependency),
 * look up every function listed in the table generated from the ABI
 * description, and call each with argument types taken from that table.
 * Success paths, every documented error path, and an asynchronous
 * acquisition completed through a callback. One harness for both
 * platforms:
 *   Linux    dlopen + dlsym, calls and the callback through libffi
 *            (ffi_call, a closure), as Python's ctypes or Node's ffi do;
 *   Windows  LoadLibrary + GetProcAddress, calls through function pointers
 *            typed from the same table (abi_call_typed), as a binding
 *            generator's output does (built with ABI_TABLE_TYPED_CALLS).
 *
 * Usage: whsem_ffi_suite /path/to/libwhsem.so.1 (or whsem.dll)
 */
#if defined(_WIN32) && !defined(ABI_TABLE_TYPED_CALLS)
#define ABI_TABLE_TYPED_CALLS
#endif
#ifdef _WIN32
#define ABI_CALL __cdecl
#endif
#include "abi_table.generated.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef _WIN32
#include <windows.h>
static void *load(const char *path) { return (void *)LoadLibraryA(path); }
static void *lookup(void *lib, const char *name) { return (void *)GetProcAddress((HMODULE)lib, name); }
static const char *load_error(void) { return "LoadLibrary or GetProcAddress failed"; }
static void sleep_ms(int ms) { Sleep((DWORD)ms); }
static long self_pid(void) { return (long)GetCurrentProcessId(); }
#else
#include <dlfcn.h>
#include <ffi.h>
#include <unistd.h>
static void *load(const char *path) { return dlopen(path, RTLD_NOW | RTLD_LOCAL); }
static void *lookup(void *lib, const char *name) { return dlsym(lib, name); }
static const char *load_error(void) { return dlerror(); }
static void sleep_ms(int ms) { usleep((useconds_t)ms * 1000); }
static long self_pid(void) { return (long)getpid(); }
#endif

/* Status values, restated here on purpose: a foreign runtime has no header. */
enum {
    OK = 0, TIMEOUT = 1, PENDING = 2, CANCELED = 3, E_INVALID_ARGUMENT = -1, E_INVALID_HANDLE = -2,
    E_INVALID_NAME = -3, E_MAX_COUNT_MISMATCH = -4, E_NOT_FOUND = -13, E_UNSUPPORTED = -14
};

/* What a caller's variable held before a call: anything but 0, which every
 * status other than OK leaves in a handle out-parameter (since 1.1). */
#define JUNK 0xdeadbeefcafef00dull

static struct fn {
    void *addr;
#ifndef ABI_TABLE_TYPED_CALLS
    ffi_cif cif;
    ffi_type *args[8];
#endif
} fns[ABI_FUNCTION_COUNT];

static int failures, checks;

#ifndef ABI_TABLE_TYPED_CALLS
static ffi_type *ffi_of(enum abi_kind k)
{
    switch (k) {
    case K_VOID: return &ffi_type_void;
    case K_U32: return &ffi_type_uint32;
    case K_I32: return &ffi_type_sint32;
    case K_I64: return &ffi_type_sint64;
    case K_U64: return &ffi_type_uint64;
    case K_SIZE: return sizeof(size_t) == 8 ? &ffi_type_uint64 : &ffi_type_uint32;
    case K_PTR: return &ffi_type_pointer;
    }
    return NULL;
}
#endif

static int index_of(const char *name)
{
    for (size_t i = 0; i < ABI_FUNCTION_COUNT; i++)
        if (strcmp(abi_functions[i].name, name) == 0) return (int)i;
    fprintf(stderr, "the ABI table has no %s\n", name);
    exit(2);
}

/*
 * Calls `name` with its arguments as 64-bit values (integers converted by
 * the compound literal in the call() macro, pointers through P()), narrowed
 * to each parameter's kind as the table says. Returns the result widened to
 * 64 bits (signed for int32).
 */
#define call(name, ...) call_impl(name, (const uint64_t[]){0, ##__VA_ARGS__} + 1)

static int64_t call_impl(const char *name, const uint64_t *in)
{
    int i = index_of(name);
#ifdef ABI_TABLE_TYPED_CALLS
    return abi_call_typed((size_t)i, (void (*)(void))fns[i].addr, in);
#else
    const struct abi_function *f = &abi_functions[i];
    union {
        uint32_t u32;
        int32_t i32;
        int64_t i64;
        uint64_t u64;
        size_t size;
        void *ptr;
    } vals[8];
    void *argp[8];
    for (int k = 0; k < f->nparams; k++) {
        uint64_t v = in[k];
        switch (f->params[k]) {
        case K_U32: vals[k].u32 = (uint32_t)v; break;
        case K_I32: vals[k].i32 = (int32_t)v; break;
        case K_I64: vals[k].i64 = (int64_t)v; break;
        case K_U64: vals[k].u64 = v; break;
        case K_SIZE: vals[k].size = (size_t)v; break;
        case K_PTR: vals[k].ptr = (void *)(uintptr_t)v; break;
        case K_VOID: break;
        }
        argp[k] = &vals[k];
    }
    ffi_arg ret = 0;
    ffi_call(&fns[i].cif, FFI_FN(fns[i].addr), &ret, argp);
    switch (f->ret) {
    case K_I32: return (int32_t)ret;
    case K_U32: return (uint32_t)ret;
    default: return (int64_t)ret;
    }
#endif
}

#define P(x) ((uint64_t)(uintptr_t)(x))

static const char *last_error(void) { return (const char *)(uintptr_t)call("whsem_last_error"); }

static void expect(int64_t got, int64_t want, const char *what, int line)
{
    checks++;
    if (got != want) {
        failures++;
        fprintf(stderr, "line %d: %s: got %lld, want %lld (%s)\n", line, what, (long long)got,
                (long long)want, last_error());
    }
}
#define EXPECT(call_expr, want) expect((call_expr), (want), #call_expr, __LINE__)
#define EXPECT_TRUE(cond) expect(!!(cond), 1, #cond, __LINE__)

/* ---- the callback ------------------------------------------------------- */

static volatile int callback_calls;
static volatile int64_t callback_status = -100;
static volatile uint64_t callback_op;

static void on_callback(uint64_t op, int32_t status, void *user_data, void *closure_data)
{
    callback_op = op;
    callback_status = status;
    if (user_data != (void *)0x5eed || closure_data != (void *)0xc105e) callback_status = -99;
    __atomic_add_fetch(&callback_calls, 1, __ATOMIC_SEQ_CST);
}

#ifdef ABI_TABLE_TYPED_CALLS
/* A plain function in the ABI's calling convention. */
static void ABI_CALL typed_callback(uint64_t op, int32_t status, void *user_data)
{
    on_callback(op, status, user_data, (void *)0xc105e);
}
#else
/* A libffi closure: code made at run time, as a runtime makes for its
 * own functions. */
static void closure_body(ffi_cif *cif, void *ret, void **args, void *user)
{
    (void)cif;
    (void)ret;
    on_callback(*(uint64_t *)args[0], *(int32_t *)args[1], *(void **)args[2], user);
}
#endif

static void wait_for_callbacks(int n)
{
    for (int i = 0; i < 20000 && __atomic_load_n(&callback_calls, __ATOMIC_SEQ_CST) < n; i++)
        sleep_ms(1);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s /path/to/libwhsem.so.1\n", argv[0]);
        return 2;
    }
    void *lib = load(argv[1]);
    if (!lib) {
        fprintf(stderr, "loading %s: %s\n", argv[1], load_error());
        return 1;
    }
    for (size_t i = 0; i < ABI_FUNCTION_COUNT; i++) {
        const struct abi_function *f = &abi_functions[i];
        fns[i].addr = lookup(lib, f->name);
        if (!fns[i].addr) {
            fprintf(stderr, "looking up %s: %s\n", f->name, load_error());
            return 1;
        }
#ifndef ABI_TABLE_TYPED_CALLS
        for (int k = 0; k < f->nparams; k++) fns[i].args[k] = ffi_of(f->params[k]);
        if (ffi_prep_cif(&fns[i].cif, FFI_DEFAULT_ABI, (unsigned)f->nparams, ffi_of(f->ret),
                         fns[i].args) != FFI_OK) {
            fprintf(stderr, "ffi_prep_cif %s failed\n", f->name);
            return 1;
        }
#endif
    }
    /* Nothing beyond the ABI is reachable. */
    EXPECT_TRUE(lookup(lib, "whsem__fail") == NULL);
    /* Every function the table lists has a signature checksum. */
    for (size_t i = 0; i < ABI_FUNCTION_COUNT; i++)
        EXPECT_TRUE(call("whsem_abi_checksum", P(abi_functions[i].name)) != 0);
    EXPECT(call("whsem_abi_checksum", P("whsem_no_such_function")), 0);
    EXPECT(call("whsem_abi_checksum", P(NULL)), 0);
    EXPECT_TRUE(call("whsem_abi_checksum", P("struct whsem_info")) != 0);
    EXPECT_TRUE(call("whsem_abi_checksum", P("callback whsem_callback")) != 0);

    /* ---- library and errors ---- */
    /* The release itself is checked against the header by the library
     * suite; here, that the number and the string agree, in major 1. */
    uint64_t version = call("whsem_version");
    char version_text[32];
    snprintf(version_text, sizeof version_text, "%u.%u.%u", (unsigned)(version >> 16),
             (unsigned)(version >> 8 & 0xff), (unsigned)(version & 0xff));
    EXPECT(version >> 16, 1);
    EXPECT(strcmp((const char *)(uintptr_t)call("whsem_version_string"), version_text), 0);
    EXPECT(strcmp((const char *)(uintptr_t)call("whsem_status_name", (int64_t)OK), "WHSEM_OK"), 0);
    EXPECT(strcmp((const char *)(uintptr_t)call("whsem_status_name", (int64_t)-13),
                  "WHSEM_E_NOT_FOUND"), 0);
    EXPECT(strcmp((const char *)(uintptr_t)call("whsem_status_name", (int64_t)-999),
                  "WHSEM_UNKNOWN_STATUS"), 0);
    EXPECT(strcmp(last_error(), ""), 0);

    /* ---- names ---- */
    char buf[512];
    size_t len = 0;
    EXPECT(call("whsem_safe_name", P(""), P(buf), sizeof buf, P(&len)), OK);
    EXPECT(strcmp(buf, "Global\\EMPTYz4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUd"
                       "BeoGlODJ6+SfaPg=="), 0);
    EXPECT(call("whsem_safe_name", P("abc"), P(NULL), 0, P(&len)), E_INVALID_ARGUMENT);
    EXPECT((int64_t)len, (int64_t)sizeof "Global\\abc");
    EXPECT(call("whsem_safe_name", P(NULL), P(buf), sizeof buf, P(&len)), E_INVALID_ARGUMENT);
    EXPECT(call("whsem_safe_name", P("abc"), P(buf), sizeof buf, P(NULL)), E_INVALID_ARGUMENT);
    EXPECT(call("whsem_safe_name", P("\xff"), P(buf), sizeof buf, P(&len)), E_INVALID_NAME);
    EXPECT_TRUE(strlen(last_error()) > 0);

    /* ---- open / introspection ---- */
    char name[64];
    snprintf(name, sizeof name, "ffi-suite-%ld", self_pid());
    uint64_t sem = 0, sem2 = 0, none = 0;
    EXPECT(call("whsem_open", P(name), 2, P(NULL), P(&sem)), OK);
    sem2 = JUNK;
    EXPECT(call("whsem_open", P(name), 3, P(NULL), P(&sem2)), E_MAX_COUNT_MISMATCH);
    EXPECT((int64_t)sem2, 0);
    EXPECT(call("whsem_open", P(NULL), 2, P(NULL), P(&sem2)), E_INVALID_ARGUMENT);
    EXPECT(call("whsem_open", P(name), 0, P(NULL), P(&sem2)), E_INVALID_ARGUMENT);
    EXPECT(call("whsem_open", P(name), 2, P(NULL), P(NULL)), E_INVALID_ARGUMENT);
    struct {
        uint32_t struct_size, flags;
        int32_t check;
        uint32_t mode;
    } opts = {16, 1 /* exact */, 0, 0};
    EXPECT(call("whsem_open", P("not-global"), 1, P(&opts), P(&sem2)), E_INVALID_NAME);
    opts.struct_size = 0;
    EXPECT(call("whsem_open", P(name), 2, P(&opts), P(&sem2)), E_INVALID_ARGUMENT);
    EXPECT(call("whsem_open_existing", P("ffi-nobody-has-this-name"), P(NULL), P(&none)), E_NOT_FOUND);
    EXPECT(call("whsem_open_existing", P(name), P(NULL), P(&sem2)), OK);
    int32_t max = 0;
    EXPECT(call("whsem_max_count", sem2, P(&max)), OK);
    EXPECT(max, 2);
    EXPECT(call("whsem_max_count", sem2, P(NULL)), E_INVALID_ARGUMENT);
    EXPECT(call("whsem_max_count", 0, P(&max)), E_INVALID_HANDLE);
    EXPECT(call("whsem_name", sem, P(buf), sizeof buf, P(&len)), OK);
    EXPECT(strncmp(buf, "Global\\ffi-suite-", 17), 0);
    EXPECT(call("whsem_name", sem, P(buf), 3, P(&len)), E_INVALID_ARGUMENT);
    EXPECT(call("whsem_name", 12345, P(buf), sizeof buf, P(&len)), E_INVALID_HANDLE);
    EXPECT(call("whsem_close", sem2), OK);
    EXPECT(call("whsem_close", sem2), E_INVALID_HANDLE);

    /* ---- tickets ---- */
    uint64_t t1 = 0, t2 = 0, t3 = 0;
    EXPECT(call("whsem_acquire", sem, 0, 0, P(&t1)), OK);
    EXPECT(call("whsem_acquire", sem, 0, 0, P(&t2)), OK);
    t3 = JUNK;
    EXPECT(call("whsem_acquire", sem, 0, 0, P(&t3)), TIMEOUT);
    EXPECT((int64_t)t3, 0);
    EXPECT(call("whsem_acquire", sem, 10, 0, P(&t3)), TIMEOUT);
    EXPECT(call("whsem_acquire", sem, (int64_t)-2, 0, P(&t3)), E_INVALID_ARGUMENT);
    EXPECT(call("whsem_acquire", sem, 0, 0, P(NULL)), E_INVALID_ARGUMENT);
    EXPECT(call("whsem_acquire", 0, 0, 0, P(&t3)), E_INVALID_HANDLE);
    EXPECT(call("whsem_acquire", t1, 0, 0, P(&t3)), E_INVALID_HANDLE); /* wrong kind */
    struct {
        uint32_t struct_size;
        int32_t max_count, free_count;
        uint32_t waiters, processes, holders;
        uint64_t recoveries;
    } info = {sizeof info, 0, 0, 0, 0, 0, 0};
    struct {
        int64_t pid, since;
        int32_t tickets;
        uint32_t waiting;
    } holders[4];
    size_t n = 0;
    EXPECT(call("whsem_query", sem, P(&info), P(holders), 4, P(&n)), OK);
    EXPECT((int64_t)n, 1);
    EXPECT(holders[0].pid, self_pid());
    EXPECT(holders[0].tickets, 2);
    EXPECT(info.free_count, 0);
    info.struct_size = 4;
    EXPECT(call("whsem_query", sem, P(&info), P(NULL), 0, P(&n)), E_INVALID_ARGUMENT);
    EXPECT(call("whsem_query", sem, P(NULL), P(NULL), 1, P(&n)), E_INVALID_ARGUMENT);
    /* 1.1: a ticket of this machine cannot be lost, so it cannot be watched. */
    EXPECT(call("whsem_ticket_check", t1), OK);
    EXPECT(call("whsem_ticket_watch", t1, 0, P(NULL), P(NULL)), E_UNSUPPORTED);
    EXPECT(call("whsem_ticket_check", 0), E_INVALID_HANDLE);
    EXPECT(call("whsem_ticket_watch", sem, 0, P(NULL), P(NULL)), E_INVALID_HANDLE);
    EXPECT(call("whsem_release", t1), OK);
    EXPECT(call("whsem_release", t1), E_INVALID_HANDLE);
    EXPECT(call("whsem_ticket_check", t1), E_INVALID_HANDLE);
    EXPECT(call("whsem_release", 0), E_INVALID_HANDLE);
    EXPECT(call("whsem_release", sem), E_INVALID_HANDLE);

    /* ---- cancellation ---- */
    uint64_t c = 0;
    EXPECT(call("whsem_cancel_new", P(&c)), OK);
    EXPECT(call("whsem_cancel_new", P(NULL)), E_INVALID_ARGUMENT);
    EXPECT(call("whsem_cancel_trigger", c), OK);
    t3 = JUNK;
    EXPECT(call("whsem_acquire", sem, 0, c, P(&t3)), CANCELED);
    EXPECT((int64_t)t3, 0);
    EXPECT(call("whsem_cancel_free", c), OK);
    EXPECT(call("whsem_cancel_free", c), E_INVALID_HANDLE);
    EXPECT(call("whsem_cancel_trigger", c), E_INVALID_HANDLE);
    EXPECT(call("whsem_cancel_trigger", 0), E_INVALID_HANDLE);

    /* ---- asynchronous, completed through the callback ---- */
#ifdef ABI_TABLE_TYPED_CALLS
    void *cb_code = (void *)typed_callback;
#else
    ffi_cif cb_cif;
    ffi_type *cb_args[3] = {&ffi_type_uint64, &ffi_type_sint32, &ffi_type_pointer};
    void *cb_code = NULL;
    ffi_closure *closure = ffi_closure_alloc(sizeof(ffi_closure), &cb_code);
    if (!closure || ffi_prep_cif(&cb_cif, FFI_DEFAULT_ABI, 3, &ffi_type_void, cb_args) != FFI_OK ||
        ffi_prep_closure_loc(closure, &cb_cif, closure_body, (void *)0xc105e, cb_code) != FFI_OK) {
        fprintf(stderr, "cannot make the libffi closure\n");
        return 1;
    }
#endif
    /* Held before: t2. Both tickets are held from here on. */
    uint64_t op = 0, op2 = 0, ta = 0, tb = 0, tc = 0;
    EXPECT(call("whsem_acquire", sem, 0, 0, P(&ta)), OK);
    EXPECT(call("whsem_acquire_async", sem, (int64_t)-1, 0, P(cb_code), P(0x5eed), P(&op)), OK);
    EXPECT(call("whsem_op_poll", op), PENDING);
    EXPECT(call("whsem_release", t2), OK); /* the ticket goes to the operation */
    wait_for_callbacks(1);
    EXPECT(callback_calls, 1);
    EXPECT(callback_status, OK);
    EXPECT((int64_t)callback_op, (int64_t)op);
    EXPECT(call("whsem_op_poll", op), OK);
    EXPECT(call("whsem_op_wait", op, 0), OK);
    EXPECT(call("whsem_op_take_ticket", op, P(&tb)), OK); /* held: ta, tb */
    EXPECT(call("whsem_op_take_ticket", op, P(&tc)), E_INVALID_ARGUMENT);
    EXPECT(call("whsem_op_take_ticket", op, P(NULL)), E_INVALID_ARGUMENT);
    EXPECT(call("whsem_op_cancel", op), OK);
    EXPECT(call("whsem_op_free", op), OK);
    EXPECT(call("whsem_op_free", op), E_INVALID_HANDLE);
    EXPECT(call("whsem_op_poll", op), E_INVALID_HANDLE);
    EXPECT(call("whsem_op_wait", op, 0), E_INVALID_HANDLE);
    EXPECT(call("whsem_op_cancel", 0), E_INVALID_HANDLE);
    EXPECT(call("whsem_op_wait", sem, 0), E_INVALID_HANDLE);
    EXPECT(call("whsem_acquire_async", sem, 0, 0, P(NULL), P(NULL), P(NULL)), E_INVALID_ARGUMENT);
    /* Pending, then canceled: the callback still comes, once. */
    EXPECT(call("whsem_acquire_async", sem, 5000, 0, P(cb_code), P(0x5eed), P(&op2)), OK);
    EXPECT(call("whsem_op_wait", op2, 1), PENDING);
    EXPECT(call("whsem_op_cancel", op2), OK);
    EXPECT(call("whsem_op_wait", op2, (int64_t)-1), CANCELED);
    wait_for_callbacks(2);
    EXPECT(callback_calls, 2);
    EXPECT(callback_status, CANCELED);
    tc = JUNK;
    EXPECT(call("whsem_op_take_ticket", op2, P(&tc)), CANCELED);
    EXPECT((int64_t)tc, 0);
    EXPECT(strcmp(last_error(), ""), 0); /* canceled by request: nothing to explain */
    EXPECT(call("whsem_op_free", op2), OK);
    /* Ended by closing its semaphore handle: the operation keeps the reason
     * and hands it to whoever asks (since 1.1), over an older message. */
    EXPECT(call("whsem_open_existing", P(name), P(NULL), P(&sem2)), OK);
    EXPECT(call("whsem_acquire_async", sem2, (int64_t)-1, 0, P(NULL), P(NULL), P(&op2)), OK);
    EXPECT(call("whsem_close", sem2), OK);
    EXPECT(call("whsem_release", 0), E_INVALID_HANDLE);
    EXPECT(call("whsem_op_wait", op2, (int64_t)-1), CANCELED);
    EXPECT(strcmp(last_error(), "the semaphore handle was closed while waiting"), 0);
    EXPECT(call("whsem_op_free", op2), OK);

    /* ---- completion queue ---- */
    uint64_t q = 0, popped = 0, tag = 0;
    int32_t fd = -1;
    EXPECT(call("whsem_queue_new", P(&q)), OK);
    EXPECT(call("whsem_queue_new", P(NULL)), E_INVALID_ARGUMENT);
    uint64_t qh = 0;
    EXPECT(call("whsem_queue_handle", q, P(&qh)), OK);
#ifdef _WIN32
    EXPECT(call("whsem_queue_fd", q, P(&fd)), E_UNSUPPORTED); /* an event, no descriptor */
    EXPECT_TRUE(qh != 0);
#else
    EXPECT(call("whsem_queue_fd", q, P(&fd)), OK);
    EXPECT_TRUE(fd >= 0);
    EXPECT((int64_t)qh, fd); /* on Linux, the descriptor */
#endif
    EXPECT(call("whsem_queue_handle", q, P(NULL)), E_INVALID_ARGUMENT);
    EXPECT(call("whsem_queue_handle", 0, P(&qh)), E_INVALID_HANDLE);
    popped = tag = JUNK;
    EXPECT(call("whsem_queue_pop", q, P(&popped), P(&tag)), PENDING);
    EXPECT((int64_t)popped, 0);
    EXPECT((int64_t)tag, 0);
    EXPECT(call("whsem_acquire_queued", sem, (int64_t)-1, 0, q, 77, P(&op)), OK);
    EXPECT(call("whsem_op_poll", op), PENDING);
    EXPECT(call("whsem_release", tb), OK); /* held: ta */
    EXPECT(call("whsem_op_wait", op, (int64_t)-1), OK);
    EXPECT(call("whsem_queue_pop", q, P(&popped), P(&tag)), OK);
    EXPECT((int64_t)popped, (int64_t)op);
    EXPECT((int64_t)tag, 77);
    EXPECT(call("whsem_op_free", op), OK); /* releases the untaken ticket */
    EXPECT(call("whsem_queue_free", q), OK);
    EXPECT(call("whsem_queue_free", q), E_INVALID_HANDLE);
    EXPECT(call("whsem_queue_fd", q, P(&fd)), E_INVALID_HANDLE);
    EXPECT(call("whsem_acquire_queued", sem, 0, 0, q, 1, P(&op)), E_INVALID_HANDLE);
    t1 = ta;

    /* ---- administration ---- */
    EXPECT(call("whsem_list", P(NULL), 0, P(&len)), E_INVALID_ARGUMENT);
    char *list = malloc(len + 4096);
    EXPECT(call("whsem_list", P(list), len + 4096, P(&len)), OK);
    int found = 0;
    for (char *p = list; *p; p += strlen(p) + 1) found |= strstr(p, name) != NULL;
    EXPECT(found, 1);
    free(list);
    /* 1.1: the same on the backend a string names, "" being this machine. */
    EXPECT(call("whsem_list_backend", P(""), P(NULL), 0, P(NULL)), E_INVALID_ARGUMENT);
    EXPECT(call("whsem_list_backend", P(""), P(NULL), 0, P(&len)), E_INVALID_ARGUMENT);
    list = malloc(len + 4096);
    EXPECT(call("whsem_list_backend", P(NULL), P(list), len + 4096, P(&len)), OK);
    found = 0;
    for (char *p = list; *p; p += strlen(p) + 1) found |= strstr(p, name) != NULL;
    EXPECT(found, 1);
    free(list);
    fd = 7;
#ifdef _WIN32
    EXPECT(call("whsem_share_liveness", sem, P(&fd)), E_UNSUPPORTED);
#else
    EXPECT(call("whsem_share_liveness", sem, P(&fd)), OK);
    EXPECT_TRUE(fd >= 3);
    close(fd);
#endif
    EXPECT(call("whsem_share_liveness", sem, P(NULL)), E_INVALID_ARGUMENT);
    EXPECT(call("whsem_release", t1), OK);
    EXPECT(call("whsem_close", sem), OK);
    EXPECT(call("whsem_share_liveness", sem, P(&fd)), E_INVALID_HANDLE);
    EXPECT(fd, -1);
    EXPECT(call("whsem_unlink", P(name), 0x100), E_INVALID_ARGUMENT);
    EXPECT(call("whsem_unlink", P(NULL), 0), E_INVALID_ARGUMENT);
    EXPECT(call("whsem_unlink_backend", P(""), P(name), 0x100), E_INVALID_ARGUMENT);
#ifndef _WIN32
    EXPECT(call("whsem_unlink_backend", P(NULL), P(name), 0), OK); /* Windows: gone with its last handle */
#endif
    EXPECT(call("whsem_unlink", P(name), 0), E_NOT_FOUND);
    EXPECT(call("whsem_unlink_backend", P(""), P(name), 0), E_NOT_FOUND);

#ifndef ABI_TABLE_TYPED_CALLS
    ffi_closure_free(closure);
#endif
    printf("ffi suite: %d checks over %zu functions, %d failed\n", checks, ABI_FUNCTION_COUNT, failures);
    return failures ? 1 : 0;
}
