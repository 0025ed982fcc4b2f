/* SPDX-License-Identifier: MIT */
/*
 * Force-included (-include) into every source of libwhsem.so when
 * WHSEM_PORTABLE_GLIBC is on (src/linux/portable_glibc.cmake): binds the
 * library to glibc symbol versions no newer than 2.28, so that the copy
 * shipped in the NuGet package, built on a current distribution, loads on
 * older ones too (RHEL 8, Debian 10, Ubuntu 18.10 and later).
 *
 * Why these names: glibc 2.34 moved the pthread and dl functions into
 * libc.so.6 under new versions (the old ones stay, as compatibility
 * symbols), 2.32 did the same for pthread_sigmask, and 2.33 turned stat and
 * fstat, until then inline wrappers of __xstat and __fxstat, into real
 * functions. Everything else libwhsem calls has kept the version it had in
 * 2.28; the csharp_package test checks the packed library's versions, so a
 * new call that needs a newer glibc fails it rather than a user's load.
 *
 * The old versions live in libpthread.so.0 and libdl.so.2 before 2.34: the
 * link names both (DT_NEEDED) so that they are loaded there too.
 */
#ifndef WHSEM_GLIBC_2_28_H
#define WHSEM_GLIBC_2_28_H

#if !defined(__x86_64__)
#error "WHSEM_PORTABLE_GLIBC knows the symbol versions of x86_64 only"
#endif

/* GLIBC_2.2.5 is x86_64's first version: the one every function that
 * predates the port carries. */
#define WHSEM_GLIBC_PIN(name) __asm__(".symver " #name "," #name "@GLIBC_2.2.5")
WHSEM_GLIBC_PIN(pthread_create);
WHSEM_GLIBC_PIN(pthread_once);
WHSEM_GLIBC_PIN(pthread_key_create);
WHSEM_GLIBC_PIN(pthread_setspecific);
WHSEM_GLIBC_PIN(pthread_mutex_trylock);
WHSEM_GLIBC_PIN(pthread_sigmask);
WHSEM_GLIBC_PIN(dlopen);
WHSEM_GLIBC_PIN(dlsym);
WHSEM_GLIBC_PIN(dlerror);
#undef WHSEM_GLIBC_PIN

/* stat and fstat as glibc's headers wrote them before 2.33: calls of the
 * versioned entry points with the structure's version (1 on x86_64). The
 * header is included first so that its own declarations are not rewritten. */
#include <sys/stat.h>
extern int __xstat(int ver, const char *path, struct stat *buf);
extern int __fxstat(int ver, int fd, struct stat *buf);
#define stat(path, buf) __xstat(1, (path), (buf))
#define fstat(fd, buf) __fxstat(1, (fd), (buf))

#endif
