/* SPDX-License-Identifier: MIT */
/*
 * A consumer built as MSVC users build one: compiled for the MSVC target
 * (clang), linked by lld-link against whsem.lib, the MSVC import library
 * (test win_msvc_import_library). It has no C runtime, so it cannot print:
 * its exit code says which call failed (0: all of them succeeded).
 */
#include <whsem.h>

int whsem_msvc_consumer(void);

int whsem_msvc_consumer(void)
{
    whsem_sem sem;
    whsem_ticket ticket;
    if (whsem_version() != WHSEM_VERSION) return 10;
    if (whsem_open("msvc-import-library", 1, NULL, &sem) != WHSEM_OK) return 11;
    if (whsem_acquire(sem, 0, 0, &ticket) != WHSEM_OK) return 12;
    if (whsem_release(ticket) != WHSEM_OK) return 13;
    if (whsem_close(sem) != WHSEM_OK) return 14;
    return 0;
}
