/*
 * Drives whsem.dll the way a foreign runtime does: LoadLibraryW, every
 * function of the ABI resolved by name with GetProcAddress (the list is
 * generated from the ABI description), then success and error paths and an
 * asynchronous acquisition with a callback, all through function pointers.
 * Exit code 0: everything held; otherwise the number of failed checks.
 */
#include "whsem.h"

#include "../ffi/abi_table.generated.h"

#include <stdio.h>
#include <string.h>
#include <windows.h>

static int failures;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "loadlib: check failed at line %d: %s\n", __LINE__, #cond); \
            failures++;                                                              \
        }                                                                            \
    } while (0)

typedef uint32_t(WHSEM_CALL *version_fn)(void);
typedef const char *(WHSEM_CALL *text_fn)(void);
typedef const char *(WHSEM_CALL *status_name_fn)(whsem_status);
typedef whsem_status(WHSEM_CALL *open_fn)(const char *, int32_t, const whsem_open_options *, whsem_sem *);
typedef whsem_status(WHSEM_CALL *handle_fn)(uint64_t);
typedef whsem_status(WHSEM_CALL *acquire_fn)(whsem_sem, int64_t, whsem_cancel, whsem_ticket *);
typedef whsem_status(WHSEM_CALL *acquire_async_fn)(whsem_sem, int64_t, whsem_cancel, whsem_callback,
                                                   void *, whsem_op *);
typedef whsem_status(WHSEM_CALL *op_wait_fn)(whsem_op, int64_t);
typedef whsem_status(WHSEM_CALL *take_fn)(whsem_op, whsem_ticket *);
typedef whsem_status(WHSEM_CALL *safe_name_fn)(const char *, char *, size_t, size_t *);
typedef uint32_t(WHSEM_CALL *checksum_fn)(const char *);

struct cb_state {
    HANDLE done;
    volatile LONG calls;
    whsem_status status;
    DWORD thread;
};

static void WHSEM_CALL on_done(whsem_op op, whsem_status status, void *user_data)
{
    struct cb_state *s = user_data;
    (void)op;
    s->status = status;
    s->thread = GetCurrentThreadId();
    InterlockedIncrement(&s->calls);
    SetEvent(s->done);
}

int main(void)
{
    HMODULE lib = LoadLibraryW(L"whsem.dll");
    if (!lib) {
        fprintf(stderr, "loadlib: LoadLibraryW(whsem.dll): error %lu\n", GetLastError());
        return 100;
    }
    FARPROC fns[ABI_FUNCTION_COUNT];
    for (size_t i = 0; i < ABI_FUNCTION_COUNT; i++) {
        fns[i] = GetProcAddress(lib, abi_functions[i].name);
        if (!fns[i]) fprintf(stderr, "loadlib: %s is not exported\n", abi_functions[i].name);
        CHECK(fns[i] != NULL);
    }
    if (failures) return failures;
    /* Nothing beyond the ABI is reachable. */
    CHECK(GetProcAddress(lib, "whsem__fail") == NULL);
#define FN(type, name) ((type)(void *)GetProcAddress(lib, name))
    checksum_fn abi_checksum = FN(checksum_fn, "whsem_abi_checksum");
    for (size_t i = 0; i < ABI_FUNCTION_COUNT; i++) CHECK(abi_checksum(abi_functions[i].name) != 0);
    CHECK(FN(version_fn, "whsem_version")() == WHSEM_VERSION);
    CHECK(strcmp(FN(text_fn, "whsem_version_string")(), "1.0.0") == 0);
    status_name_fn status_name = FN(status_name_fn, "whsem_status_name");
    text_fn last_error = FN(text_fn, "whsem_last_error");
    open_fn open = FN(open_fn, "whsem_open");
    handle_fn close = FN(handle_fn, "whsem_close"), release = FN(handle_fn, "whsem_release");
    handle_fn op_free = FN(handle_fn, "whsem_op_free");
    acquire_fn acquire = FN(acquire_fn, "whsem_acquire");
    acquire_async_fn acquire_async = FN(acquire_async_fn, "whsem_acquire_async");
    op_wait_fn op_wait = FN(op_wait_fn, "whsem_op_wait");
    take_fn take = FN(take_fn, "whsem_op_take_ticket");
    safe_name_fn safe_name = FN(safe_name_fn, "whsem_safe_name");

    /* Error paths: a status, a name for it, and a message. */
    CHECK(release(0) == WHSEM_E_INVALID_HANDLE);
    CHECK(strcmp(status_name(WHSEM_E_INVALID_HANDLE), "WHSEM_E_INVALID_HANDLE") == 0);
    CHECK(strlen(last_error()) > 0);
    whsem_sem sem = 0;
    CHECK(open(NULL, 1, NULL, &sem) == WHSEM_E_INVALID_ARGUMENT);
    CHECK(open("x", 0, NULL, &sem) == WHSEM_E_INVALID_ARGUMENT);
    CHECK(open("\xff", 1, NULL, &sem) == WHSEM_E_INVALID_NAME);
    char buf[64];
    size_t len = 0;
    CHECK(safe_name("abc", buf, sizeof buf, &len) == WHSEM_OK && strcmp(buf, "Global\\abc") == 0);

    /* Success: one ticket of one, then an asynchronous acquisition that
     * completes through the callback once the ticket is released. */
    char name[96];
    snprintf(name, sizeof name, "whsem-test-loadlib-%lu-%llu", GetCurrentProcessId(),
             (unsigned long long)GetTickCount64());
    CHECK(open(name, 1, NULL, &sem) == WHSEM_OK);
    whsem_ticket held = 0, none = 0;
    CHECK(acquire(sem, 0, 0, &held) == WHSEM_OK);
    CHECK(acquire(sem, 0, 0, &none) == WHSEM_TIMEOUT);
    struct cb_state st = {CreateEventW(NULL, TRUE, FALSE, NULL), 0, -100, 0};
    whsem_op op = 0;
    CHECK(acquire_async(sem, 60000, 0, on_done, &st, &op) == WHSEM_OK);
    CHECK(op_wait(op, 0) == WHSEM_PENDING);
    CHECK(release(held) == WHSEM_OK);
    CHECK(release(held) == WHSEM_E_INVALID_HANDLE);
    CHECK(WaitForSingleObject(st.done, 60000) == WAIT_OBJECT_0);
    CHECK(st.calls == 1 && st.status == WHSEM_OK);
    CHECK(st.thread != GetCurrentThreadId()); /* a library thread */
    whsem_ticket t = 0;
    CHECK(take(op, &t) == WHSEM_OK && t != 0);
    CHECK(op_free(op) == WHSEM_OK);
    CHECK(release(t) == WHSEM_OK);
    CHECK(acquire(sem, 0, 0, &t) == WHSEM_OK && release(t) == WHSEM_OK);
    CHECK(close(sem) == WHSEM_OK);
    CHECK(close(sem) == WHSEM_E_INVALID_HANDLE);
    Sleep(200);
    CHECK(st.calls == 1); /* exactly once */
    printf("loadlib: %zu functions resolved by name; %d failed checks\n",
           (size_t)ABI_FUNCTION_COUNT, failures);
    return failures;
}
