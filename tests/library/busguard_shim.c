/* SPDX-License-Identifier: MIT */
/*
 * Gives test_busguard.cpp the bus guard through plain C types (see
 * busguard_shim.h).
 */
#include "busguard_shim.h"

#include "busguard.h"

static _Atomic bool flags[BGT_FLAGS];

int bgt_add(void *base, size_t len, unsigned flag)
{
    atomic_store(&flags[flag], false);
    return whsem__busguard_add(base, len, &flags[flag]);
}

void bgt_remove(void *base)
{
    whsem__busguard_remove(base);
}

bool bgt_broken(unsigned flag)
{
    return atomic_load(&flags[flag]);
}
