/* SPDX-License-Identifier: MIT */
/*
 * One process of the compatibility test: it loads the libwhsem it is given
 * (the 1.0 library or this tree's, by path) and plays a part on a name.
 *
 *   peer LIB NAME hold [MAX]    take 1 ticket of MAX (2), print "ready", sleep
 *                               until killed
 *   peer LIB NAME share         the other ticket is ours, the name is full (0)
 *   peer LIB NAME recover       a dead holder's ticket comes back within 10 s (0)
 *   peer LIB NAME take MAX N    N tickets of MAX come within 10 s each and then
 *                               the name is full (0)
 *   peer LIB NAME visit MAX     a ticket of MAX comes within 10 s and goes back (0)
 *
 * take and visit exit without closing, as processes do.
 *
 * Exit codes: 0 as expected; anything else says what went wrong.
 */
#include "whsem.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef whsem_status (*open_fn)(const char *, int32_t, const whsem_open_options *, whsem_sem *);
typedef whsem_status (*acquire_fn)(whsem_sem, int64_t, whsem_cancel, whsem_ticket *);
typedef whsem_status (*release_fn)(whsem_ticket);
typedef const char *(*text_fn)(void);

int main(int argc, char **argv)
{
    if (argc < 4 || argc > 6) return 64;
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "peer: %s\n", dlerror());
        return 65;
    }
    open_fn open_ = (open_fn)dlsym(lib, "whsem_open");
    acquire_fn acquire = (acquire_fn)dlsym(lib, "whsem_acquire");
    release_fn release = (release_fn)dlsym(lib, "whsem_release");
    text_fn version = (text_fn)dlsym(lib, "whsem_version_string");
    text_fn last_error = (text_fn)dlsym(lib, "whsem_last_error");
    whsem_sem s;
    whsem_ticket a, b;
    int32_t max = argc > 4 ? (int32_t)atoi(argv[4]) : 2;
    whsem_status st = open_(argv[2], max, NULL, &s);
    if (st != WHSEM_OK) {
        fprintf(stderr, "peer (%s): open: %d %s\n", version(), st, last_error());
        return 1;
    }
    const char *part = argv[3];
    if (strcmp(part, "hold") == 0) {
        if (acquire(s, 0, 0, &a) != WHSEM_OK) return 2;
        printf("ready\n");
        fflush(stdout);
        for (;;) pause();
    }
    if (strcmp(part, "share") == 0) {
        if ((st = acquire(s, 5000, 0, &a)) != WHSEM_OK) return 3;
        if ((st = acquire(s, 0, 0, &b)) != WHSEM_TIMEOUT) return 4; /* never 3 of 2 */
        return release(a) == WHSEM_OK ? 0 : 5;
    }
    if (strcmp(part, "visit") == 0)
        return acquire(s, 10000, 0, &a) == WHSEM_OK && release(a) == WHSEM_OK ? 0 : 12;
    if (strcmp(part, "take") == 0 && argc == 6) {
        whsem_ticket got[64];
        int n = atoi(argv[5]);
        if (n < 0 || n > 64) return 64;
        for (int i = 0; i < n; i++)
            if (acquire(s, 10000, 0, &got[i]) != WHSEM_OK) return 9;
        if (acquire(s, 0, 0, &a) != WHSEM_TIMEOUT) return 10; /* one too many */
        for (int i = 0; i < n; i++)
            if (release(got[i]) != WHSEM_OK) return 11;
        return 0;
    }
    if (strcmp(part, "recover") == 0) {
        if ((st = acquire(s, 10000, 0, &a)) != WHSEM_OK) return 6;
        if ((st = acquire(s, 10000, 0, &b)) != WHSEM_OK) return 7;
        return release(a) == WHSEM_OK && release(b) == WHSEM_OK ? 0 : 8;
    }
    return 64;
}
