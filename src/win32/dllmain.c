/* SPDX-License-Identifier: MIT */
/*
 * whsem.dll's entry point, for one event: being unloaded by FreeLibrary.
 *
 * Threads that used the library hold records in two fiber-local slots
 * (the detail message, errors.c; the handle table, handles_os.c) whose
 * callbacks run when each thread exits. If the DLL is unloaded first, a
 * later thread exit would call into unmapped code. So an unload frees both
 * slots, which runs the callbacks now, while the code is still there. A
 * DLL that has started threads of its own pins itself and is never
 * unloaded; at process exit (reserved != NULL) nothing needs undoing.
 * Only the DLL has this entry point: the static library leaves DllMain to
 * the program or DLL it is linked into.
 */
#include "win32.h"

BOOL WINAPI DllMain(HINSTANCE instance, DWORD reason, LPVOID reserved);

BOOL WINAPI DllMain(HINSTANCE instance, DWORD reason, LPVOID reserved)
{
    (void)instance;
    if (reason == DLL_PROCESS_DETACH && reserved == NULL) {
        whsem__w_threads_unload();
        whsem__w_tstate_unload();
    }
    return TRUE;
}
