/* SPDX-License-Identifier: MIT */
/*
 * The bus guard's calls for the C++ test: busguard.h speaks C11 atomics,
 * which C++17 cannot name, so the flags live on this side.
 */
#ifndef WHTEST_BUSGUARD_SHIM_H
#define WHTEST_BUSGUARD_SHIM_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BGT_FLAGS 4096

/* whsem__busguard_add with broken flag number `flag` (cleared first). */
int bgt_add(void *base, size_t len, unsigned flag);
void bgt_remove(void *base);
bool bgt_broken(unsigned flag);

#ifdef __cplusplus
}
#endif

#endif
