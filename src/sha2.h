/* SPDX-License-Identifier: MIT */
#ifndef WHSEM_SHA2_H
#define WHSEM_SHA2_H

#include <stddef.h>
#include <stdint.h>

void whsem_sha256(const void *data, size_t len, uint8_t out[32]);
void whsem_sha512(const void *data, size_t len, uint8_t out[64]);

#endif
