/* SPDX-License-Identifier: MIT */
/*
 * Name finalization and the name -> file mapping.
 *
 * Finalization must agree with the C# DistributedLock library's
 * WaitHandle naming so that every language, and the C# original, mean
 * the same semaphore by the same string. Its rules, restated:
 *   - a name that starts with "Global\" keeps the prefix and its suffix is
 *     made safe; any other name is made safe whole and gets the prefix;
 *   - making s safe (limit 253 UTF-16 units): the "valid base" is "EMPTY"
 *     for an empty s, else s with every '\' replaced by '_'; if that equals
 *     s and fits, s is kept; otherwise the result is the first
 *     min(len, 253 - 88) units of the valid base followed by the base64 of
 *     SHA-512(UTF-8 of s), which is 88 characters.
 * Lengths are UTF-16 code units, as C#'s string.Length counts them.
 * When the 165-unit cut splits a surrogate pair, C# keeps a lone high
 * surrogate, which UTF-8 cannot carry; we write U+FFFD there, which is what
 * .NET's UTF-8 encoder turns that string into.
 */
#include "names.h"

#include "sha2.h"

#include <stdio.h>
#include <string.h>

#define SAFE_SUFFIX_UNITS (WHSEM_MAX_NAME_UTF16 - WHSEM_GLOBAL_PREFIX_LEN) /* 253 */
#define HASH_B64_LEN 88

bool whsem__utf8_utf16_len(const char *s, size_t len, size_t *out_units)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t units = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = whsem__utf8_decode(p + i, len - i, &cp);
        if (n == 0 || cp == 0) return false;
        units += cp >= 0x10000 ? 2 : 1;
        i += n;
    }
    *out_units = units;
    return true;
}

static void base64(const uint8_t *in, size_t len, char *out)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len) v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len) v |= in[i + 2];
        out[o++] = tbl[v >> 18 & 63];
        out[o++] = tbl[v >> 12 & 63];
        out[o++] = i + 1 < len ? tbl[v >> 6 & 63] : '=';
        out[o++] = i + 2 < len ? tbl[v & 63] : '=';
    }
    out[o] = 0;
}

/* Copies the first `units` UTF-16 code units of valid UTF-8 `s` to out and
 * returns the bytes written (see the file comment for a split pair). */
static size_t copy_utf16_prefix(const char *s, size_t len, size_t units, char *out)
{
    size_t i = 0, o = 0, u = 0;
    while (i < len && u < units) {
        unsigned char c = (unsigned char)s[i];
        size_t n = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
        size_t w = n == 4 ? 2 : 1;
        if (i + n > len) break;
        if (u + w > units) {
            memcpy(out + o, "\xef\xbf\xbd", 3);
            return o + 3;
        }
        memcpy(out + o, s + i, n);
        o += n;
        i += n;
        u += w;
    }
    return o;
}

/* The C# ToSafeName step applied to a suffix; writes to out, returns its
 * length. out must hold WHSEM_MAX_NAME_BYTES bytes. */
static size_t safe_suffix(const char *s, size_t len, size_t units, char *out)
{
    bool has_backslash = memchr(s, '\\', len) != NULL;
    if (len > 0 && !has_backslash && units <= SAFE_SUFFIX_UNITS) {
        memcpy(out, s, len);
        return len;
    }
    char valid[WHSEM_MAX_NAME_BYTES + 8];
    const char *base;
    size_t base_len;
    if (len == 0) {
        base = "EMPTY";
        base_len = 5;
    } else {
        /* Only the first 165 units of the valid base are used; the bytes
         * needed for them are bounded by the buffer above. */
        size_t cap = len < sizeof valid ? len : sizeof valid;
        memcpy(valid, s, cap);
        for (size_t i = 0; i < cap; i++)
            if (valid[i] == '\\') valid[i] = '_';
        base = valid;
        base_len = cap;
    }
    size_t o = copy_utf16_prefix(base, base_len, SAFE_SUFFIX_UNITS - HASH_B64_LEN, out);
    uint8_t digest[64];
    whsem_sha512(s, len, digest);
    base64(digest, sizeof digest, out + o);
    return o + HASH_B64_LEN;
}

whsem_status whsem__finalize_name(const char *name, bool exact, char *out, size_t *out_len)
{
    size_t len = strlen(name), units;
    if (!whsem__utf8_utf16_len(name, len, &units))
        return whsem__fail(WHSEM_E_INVALID_NAME, "name is not valid UTF-8");
    bool prefixed = strncmp(name, WHSEM_GLOBAL_PREFIX, WHSEM_GLOBAL_PREFIX_LEN) == 0;
    if (exact) {
        if (units > WHSEM_MAX_NAME_UTF16)
            return whsem__fail(WHSEM_E_INVALID_NAME,
                               "exact name must be at most %d UTF-16 code units (it has %zu)",
                               WHSEM_MAX_NAME_UTF16, units);
        if (!prefixed)
            return whsem__fail(WHSEM_E_INVALID_NAME, "exact name must start with 'Global\\'");
        if (len == WHSEM_GLOBAL_PREFIX_LEN)
            return whsem__fail(WHSEM_E_INVALID_NAME, "exact name must not be just 'Global\\'");
        if (strchr(name + WHSEM_GLOBAL_PREFIX_LEN, '\\'))
            return whsem__fail(WHSEM_E_INVALID_NAME,
                               "exact name must not contain '\\' after 'Global\\'");
        memcpy(out, name, len + 1);
        *out_len = len;
        return WHSEM_OK;
    }
    const char *suffix = prefixed ? name + WHSEM_GLOBAL_PREFIX_LEN : name;
    size_t suffix_len = prefixed ? len - WHSEM_GLOBAL_PREFIX_LEN : len;
    size_t suffix_units = prefixed ? units - WHSEM_GLOBAL_PREFIX_LEN : units;
    memcpy(out, WHSEM_GLOBAL_PREFIX, WHSEM_GLOBAL_PREFIX_LEN);
    size_t n = safe_suffix(suffix, suffix_len, suffix_units, out + WHSEM_GLOBAL_PREFIX_LEN);
    out[WHSEM_GLOBAL_PREFIX_LEN + n] = 0;
    *out_len = WHSEM_GLOBAL_PREFIX_LEN + n;
    return WHSEM_OK;
}

/*
 * The file of a finalized name "Global\S" is WHSEM_FILE_PREFIX followed by
 * S with every byte outside [A-Za-z0-9._-] written as %XX (upper-case
 * hex). That is injective and never yields '/', so no name leaves the
 * directory or meets another. When the result would pass NAME_MAX (255),
 * the file is WHSEM_HASHED_FILE_PREFIX followed by the hex SHA-256 of the
 * whole finalized name; the two prefixes differ in a byte that the first
 * form always escapes, so the forms never meet either, and the segment
 * header stores the full name so that a (never observed) SHA-256
 * collision is reported instead of shared.
 */
void whsem__file_name(const char *final_name, size_t len, char out[256])
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *s = (const unsigned char *)final_name + WHSEM_GLOBAL_PREFIX_LEN;
    size_t n = len - WHSEM_GLOBAL_PREFIX_LEN;
    size_t o = strlen(WHSEM_FILE_PREFIX);
    memcpy(out, WHSEM_FILE_PREFIX, o);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                     c == '.' || c == '_' || c == '-';
        if (o + (plain ? 1 : 3) > 255) goto hashed;
        if (plain) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = 0;
    return;
hashed:;
    uint8_t digest[32];
    whsem_sha256(final_name, len, digest);
    o = strlen(WHSEM_HASHED_FILE_PREFIX);
    memcpy(out, WHSEM_HASHED_FILE_PREFIX, o);
    for (int i = 0; i < 32; i++) {
        out[o++] = hex[digest[i] >> 4];
        out[o++] = hex[digest[i] & 15];
    }
    out[o] = 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool whsem__decode_file_name(const char *file, char *out, size_t cap)
{
    size_t plen = strlen(WHSEM_FILE_PREFIX);
    if (strncmp(file, WHSEM_FILE_PREFIX, plen) != 0) return false;
    if (cap < WHSEM_GLOBAL_PREFIX_LEN + 1) return false;
    size_t o = WHSEM_GLOBAL_PREFIX_LEN;
    memcpy(out, WHSEM_GLOBAL_PREFIX, o);
    for (const char *p = file + plen; *p; p++) {
        if (o + 1 >= cap) return false;
        if (*p == '%') {
            int hi = hexval(p[1]), lo = hi < 0 ? -1 : hexval(p[2]);
            if (lo < 0) return false;
            out[o++] = (char)(hi << 4 | lo);
            p += 2;
        } else {
            out[o++] = *p;
        }
    }
    out[o] = 0;
    size_t units;
    return o > WHSEM_GLOBAL_PREFIX_LEN && whsem__utf8_utf16_len(out, o, &units);
}
