/* SPDX-License-Identifier: MIT */
/*
 * Decoding one UTF-8 sequence, strictly. Header-only because two programs
 * need it: the library (names.c validates names with it) and the whsem
 * command (which escapes names for a terminal), and the command links the
 * shared library, whose internals are hidden from it.
 */
#ifndef WHSEM_UTF8_H
#define WHSEM_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* The code point of the valid UTF-8 sequence at p (at most avail bytes)
 * and its length; 0 if there is none (overlong forms, surrogates and code
 * points past U+10FFFF are not UTF-8). */
static inline size_t whsem__utf8_decode(const unsigned char *p, size_t avail, uint32_t *out_cp)
{
    if (avail == 0) return 0;
    unsigned c = p[0];
    size_t n;
    uint32_t cp;
    if (c < 0x80) {
        *out_cp = c;
        return 1;
    } else if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n > avail) return 0;
    for (size_t k = 1; k < n; k++) {
        if ((p[k] & 0xc0) != 0x80) return 0;
        cp = cp << 6 | (p[k] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0; /* overlong or beyond Unicode */
    if (cp >= 0xd800 && cp <= 0xdfff) return 0; /* surrogates are not UTF-8 */
    *out_cp = cp;
    return n;
}

#endif
