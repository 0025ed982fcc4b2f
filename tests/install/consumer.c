/* SPDX-License-Identifier: MIT */
/* A program that knows libwhsem only through its installed header and
 * `pkg-config --cflags --libs whsem`. */
#include <whsem.h>

#include <stdio.h>
#include <unistd.h>

int main(void)
{
    if ((whsem_version() >> 16) != WHSEM_VERSION_MAJOR) {
        fprintf(stderr, "header %d.x but library %s\n", WHSEM_VERSION_MAJOR, whsem_version_string());
        return 1;
    }
    char name[64];
    snprintf(name, sizeof name, "installed-consumer-%d", (int)getpid());
    whsem_sem sem;
    whsem_ticket t;
    if (whsem_open(name, 1, NULL, &sem) != WHSEM_OK || whsem_acquire(sem, 0, 0, &t) != WHSEM_OK ||
        whsem_release(t) != WHSEM_OK || whsem_close(sem) != WHSEM_OK ||
        whsem_unlink(name, 0) != WHSEM_OK) {
        fprintf(stderr, "failed: %s\n", whsem_last_error());
        return 1;
    }
    printf("libwhsem %s works from the installed tree\n", whsem_version_string());
    return 0;
}
