/* SPDX-License-Identifier: MIT */
/*
 * whsem.dll unloaded (FreeLibrary) while a thread that used it still runs:
 * when that thread exits afterwards, nothing of the DLL may be called.
 * The thread holds records in the DLL's fiber-local slots (a handle-table
 * record from acquire and release, a detail message from a failed call);
 * their callbacks would run at its exit, in unmapped code, unless the
 * unload freed the slots. Exit code 0: the process survived.
 */
#include <whsem.h>

#include <stdio.h>
#include <windows.h>

typedef whsem_status(WHSEM_CALL *open_fn)(const char *, int32_t, const whsem_open_options *,
                                          whsem_sem *);
typedef whsem_status(WHSEM_CALL *acquire_fn)(whsem_sem, int64_t, whsem_cancel, whsem_ticket *);
typedef whsem_status(WHSEM_CALL *ticket_fn)(whsem_ticket);
typedef whsem_status(WHSEM_CALL *sem_fn)(whsem_sem);

static HMODULE dll;
static HANDLE used, go_on;

static DWORD WINAPI user(void *arg)
{
    (void)arg;
    open_fn open = (open_fn)(void (*)(void))GetProcAddress(dll, "whsem_open");
    acquire_fn acquire = (acquire_fn)(void (*)(void))GetProcAddress(dll, "whsem_acquire");
    ticket_fn release = (ticket_fn)(void (*)(void))GetProcAddress(dll, "whsem_release");
    sem_fn close = (sem_fn)(void (*)(void))GetProcAddress(dll, "whsem_close");
    char name[64];
    snprintf(name, sizeof name, "whsem-test-unload-%lu", (unsigned long)GetCurrentProcessId());
    whsem_sem sem = 0;
    whsem_ticket t = 0;
    int ok = open(name, 1, NULL, &sem) == WHSEM_OK && acquire(sem, 0, 0, &t) == WHSEM_OK &&
             release(t) == WHSEM_OK && release(t) == WHSEM_E_INVALID_HANDLE && /* a message */
             close(sem) == WHSEM_OK;
    SetEvent(used);
    WaitForSingleObject(go_on, INFINITE);
    return ok ? 0 : 1; /* the exit the DLL's callbacks must not see */
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "whsem.dll";
    dll = LoadLibraryA(path);
    if (!dll) {
        fprintf(stderr, "unload: cannot load %s (error %lu)\n", path, GetLastError());
        return 2;
    }
    used = CreateEventW(NULL, TRUE, FALSE, NULL);
    go_on = CreateEventW(NULL, TRUE, FALSE, NULL);
    HANDLE th = CreateThread(NULL, 0, user, NULL, 0, NULL);
    if (!used || !go_on || !th) return 2;
    WaitForSingleObject(used, INFINITE);
    if (!FreeLibrary(dll)) return 3;
    if (GetModuleHandleA(path)) {
        fprintf(stderr, "unload: %s is still loaded after FreeLibrary\n", path);
        return 4;
    }
    SetEvent(go_on);
    WaitForSingleObject(th, INFINITE);
    DWORD code = 99;
    GetExitCodeThread(th, &code);
    if (code != 0) {
        fprintf(stderr, "unload: the library calls failed\n");
        return 5;
    }
    printf("unload: the thread exited after FreeLibrary, and nothing of the DLL ran\n");
    return 0;
}
